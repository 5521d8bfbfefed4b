"""Parses Signet's /metrics with the Prometheus client library's text parser and prints the
samples as JSON: [[name, labels, value], ...]. Fails if the exposition does not parse."""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

with urllib.request.urlopen(sys.argv[1] + "/metrics") as response:
    content_type = response.headers["Content-Type"]
    text = response.read().decode()
samples = []
for family in text_string_to_metric_families(text):
    for sample in family.samples:
        samples.append([sample.name, sample.labels, sample.value])
print(json.dumps({"content_type": content_type, "samples": samples}))
