"""Azure Table Storage through real Azurite: history, transactions, faults."""
