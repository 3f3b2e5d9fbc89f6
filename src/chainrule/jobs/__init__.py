"""The jobs the command line runs: one function per command, a typed config in, a typed result out."""
