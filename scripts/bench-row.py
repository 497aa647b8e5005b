"""Prints one row of scripts/bench-report from `tasklease bench --json` on stdin."""
import json
import sys

v = json.load(sys.stdin)
# A failed verification is a failure ({"ok": false, "error": {…the report}}).
v = v if v.get("ok") else v.get("error", v)
t = v["tasklease"]
b = v.get("baseline") or {}
ratio = v.get("ratio") or 0.0
verdict = "ok" if v["verified"] else "DOUBLE CLAIM"
print(
    f"{sys.argv[1]:<36} {t['claims_per_s']:>9.0f} {b.get('claims_per_s', 0):>9.0f} {ratio:>6.2f} "
    f"{t['p50_us'] / 1000:>7.2f} {t['p99_us'] / 1000:>7.2f} {t['max_us'] / 1000:>8.1f} {t.get('over_10ms', 0):>6} "
    f"{b.get('max_us', 0) / 1000:>8.1f}  {t['min_share'] * 100:4.1f}/{t['max_share'] * 100:4.1f}%  {verdict}"
)
