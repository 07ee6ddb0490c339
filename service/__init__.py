"""The guide's service directories as templates, and the installer that lays them out."""
