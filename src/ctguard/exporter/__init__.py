"""The Prometheus exporter face (HTTP serving and the textfile), over gather/ and render/."""
