"""compass package."""
