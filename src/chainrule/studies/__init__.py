"""The seeds' own material: seed 002's worked example, the walk-through of the five posts, seed
004's vanishing-gradient study, and the side-by-side benchmark with PyTorch."""
