"""Generated gRPC code for proto/bookify/v1 (scripts/generate_protos.py): do not edit."""
