"""Orders, parcels, the delivery status machine and the append-only delivery event log."""
