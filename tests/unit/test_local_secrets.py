"""`make run`'s own secrets: generated once per install under var/, private, reused, and
never shared between installs; loopback binds unless told otherwise."""
import json
import stat

from scripts.run_local import LOCAL_BINDS, local_binds, local_secrets


def test_first_start_generates_private_secrets_and_the_next_reuses_them(tmp_path):
    first = local_secrets(tmp_path, {})
    assert set(first) == {"JWT_SECRET", "STRIPE_WEBHOOK_SECRET"}
    assert len(first["JWT_SECRET"]) >= 43 and first["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
    path = tmp_path / "secrets.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == first
    assert local_secrets(tmp_path, {}) == first


def test_two_installs_never_share_a_secret(tmp_path):
    one, other = local_secrets(tmp_path / "one", {}), local_secrets(tmp_path / "other", {})
    assert one["JWT_SECRET"] != other["JWT_SECRET"]
    assert one["STRIPE_WEBHOOK_SECRET"] != other["STRIPE_WEBHOOK_SECRET"]


def test_the_environment_wins_and_is_not_written_down(tmp_path):
    env = {"JWT_SECRET": "from-the-environment-0123456789abcdef0123", "STRIPE_WEBHOOK_SECRET": "whsec_env"}
    assert local_secrets(tmp_path, env) == env
    assert not (tmp_path / "secrets.json").exists()
    mixed = local_secrets(tmp_path, {"JWT_SECRET": env["JWT_SECRET"]})
    assert mixed["JWT_SECRET"] == env["JWT_SECRET"]
    assert json.loads((tmp_path / "secrets.json").read_text()) == {
        "STRIPE_WEBHOOK_SECRET": mixed["STRIPE_WEBHOOK_SECRET"]}


def test_a_looser_file_is_made_private(tmp_path):
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps({"JWT_SECRET": "kept-0123456789abcdef0123456789abcdef",
                                "STRIPE_WEBHOOK_SECRET": "whsec_kept"}))
    path.chmod(0o644)
    secrets = local_secrets(tmp_path, {})
    assert secrets["JWT_SECRET"] == "kept-0123456789abcdef0123456789abcdef"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_local_runs_bind_loopback_unless_told_otherwise():
    assert local_binds({}) == LOCAL_BINDS
    assert all(value.startswith("127.0.0.1") for value in LOCAL_BINDS.values())
    assert local_binds({"GATEWAY_ADDRESS": "0.0.0.0:8000", "GRPC_BIND": "0.0.0.0"}) == {
        "METRICS_ADDRESS": "127.0.0.1"}
