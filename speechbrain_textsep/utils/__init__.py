"""Package-wide helpers with no dependency on the rest of the package.

This is the lowest layer: every other sub-package may import it, it imports
none of them.
"""
