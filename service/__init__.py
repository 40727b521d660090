"""Online side: the FastAPI retrieval service (photo -> ranked shapes). `service.app.create_app` builds it."""
