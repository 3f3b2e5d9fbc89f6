"""What a person looks at: PNG plots, the self-contained HTML report, the run record."""
