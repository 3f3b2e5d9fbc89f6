"""Data in and models out: IDX, tabular and array loaders, the embedded default set, safetensors."""
