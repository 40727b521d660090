"""CAD files as the networks see them: pool scanning, mesh loading, headless renders (grey, normals, masks and
shaded colour) and their on-disk cache."""

if __name__ != "photo2cad.shapes":  # the folder imported from the repository root as a top-level `shapes`
    raise ImportError("this folder installs as photo2cad.shapes: import photo2cad.shapes, not shapes")
