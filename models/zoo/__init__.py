"""The generators of the zoo, one file each; the registry imports every module here."""
