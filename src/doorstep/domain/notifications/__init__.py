"""The durable outbox, message templates, webhook endpoints and recipient preferences."""
