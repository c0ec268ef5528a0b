/// The hand-written OpenAPI document served at `GET /openapi.yaml`.
enum OpenAPIDocument {
    static let yaml = """
        openapi: 3.0.3
        info:
          title: Specula
          version: 0.1.0
        paths: {}
        """
}
