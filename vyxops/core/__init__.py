"""The vocabulary every stage shares: errors, time, platform facts, the contract, input checks, text."""
