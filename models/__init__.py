"""The model zoo: a registry of try-on generators sharing one set of layers and one trainer."""
