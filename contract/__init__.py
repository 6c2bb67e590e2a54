"""What every package may import: the exported SavedModel's contract (contract.saved_model)."""
