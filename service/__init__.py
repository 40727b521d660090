"""Online side: the FastAPI retrieval service (photo -> ranked shapes). `photo2cad.service.app.create_app` builds it."""

if __name__ != "photo2cad.service":  # the folder imported from the repository root as a top-level `service`
    raise ImportError("this folder installs as photo2cad.service: import photo2cad.service, not service")
