"""hetmap's version: a leaf module, so that run directories and exports can record it
without importing the package's top level (which imports everything)."""

__version__ = "0.1.0"
