"""watch package."""
