"""One adapter per external service: each turns our models into the service's calls and its failures into ours."""
