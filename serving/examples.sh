#!/usr/bin/env bash
# Example requests against a running API (amplify serve). Usage:
#   KEY=$(amplify keys create --partner P001) ./serving/examples.sh
set -euo pipefail
API=${API:-http://127.0.0.1:8000}
KEY=${KEY:?set KEY to an API key (amplify keys create --partner ID)}
H="X-API-Key: $KEY"

curl -s "$API/health"; echo                                # liveness (open)
curl -s "$API/ready"; echo                                 # lake and champions (open)
curl -s "$API/metrics" | head -5                           # Prometheus (open)

curl -s -H "$H" "$API/v1/leads?limit=5"; echo              # the partner's lead list
curl -s -H "$H" "$API/v1/leads?category=printer&format=csv" | head -3
curl -s -H "$H" -H "Accept: text/csv" "$API/v1/fleet?limit=3"
curl -s -H "$H" "$API/v1/supplies?status=ship%20now"; echo # toner to ship now
curl -s -H "$H" "$API/v1/benchmarks?period_days=180"; echo

DEVICE=$(curl -s -H "$H" "$API/v1/fleet?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["devices"][0]["device_id"])')
curl -s -H "$H" "$API/v1/devices/$DEVICE/risk"; echo       # one device's failure risk
curl -s -H "Authorization: Bearer $KEY" "$API/v1/devices/$DEVICE/supplies?alpha=0.2"; echo
curl -s -H "$H" -H "Content-Type: application/json" \
  -d "{\"device_ids\": [\"$DEVICE\", \"D-unknown\"]}" "$API/v1/devices/risk"; echo

curl -s -H "$H" "$API/v1/models"; echo                     # versions, aliases, metrics
curl -s -H "$H" "$API/v1/models/device_failure" | python3 -c 'import json,sys; print([f["name"] for f in json.load(sys.stdin)["features"]][:5])'
# online scoring: one row of features (the rest missing); the features are listed above
curl -s -H "$H" -H "Content-Type: application/json" \
  -d '{"rows": [{"contract": "mps", "family": "LaserJet Pro 4001", "device_category": "printer"}]}' \
  "$API/v1/models/device_failure/score"; echo
