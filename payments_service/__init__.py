"""The payments service: card payments through Stripe, refunds, and Stripe's webhooks."""
