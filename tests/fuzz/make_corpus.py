#!/usr/bin/env python3
# Writes the seed corpora of tests/fuzz/corpus/<target>/ (run from anywhere; overwrites the seeds
# it knows, leaves other files alone). Inputs found while fuzzing that are worth keeping go to
# tests/fuzz/corpus/<target>/ by hand; inputs that once crashed go to tests/fuzz/regressions/.
import os, struct, glob
here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))
root = os.path.join(here, 'corpus')
def put(target, name, data):
    d = os.path.join(root, target); os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f: f.write(data)

# event_parser: mode byte + body
n = 0
for p in sorted(glob.glob(os.path.join(repo, 'tests/corpus/events/*/*'))):
    body = open(p, 'rb').read()
    put('event_parser', os.path.basename(os.path.dirname(p)) + '_' + os.path.basename(p), bytes([n % 4]) + body)
    n += 1
ev = b'{"event":"purchase","eventId":"o-1","timestamp":1764319000000,"value":{"amount":"5.00","currency":"usd"},"user":{"email":" A@B.example ","ip":"2001:db8::1","firstName":"A","lastName":"B","countryCode":"us"}}'
put('event_parser', 'object', b'\x01' + ev)
put('event_parser', 'array', b'\x00[' + ev + b',' + ev.replace(b'o-1', b'o-2') + b']')
put('event_parser', 'ndjson_crlf', b'\x01' + ev + b'\r\n\r\n{bad\r\n' + ev.replace(b'o-1', b'o-3') + b'\r\n')
put('event_parser', 'nesting', b'\x01' + b'[' * 2000 + b']' * 2000)
put('event_parser', 'nesting_unclosed', b'\x00' + b'{"a":' * 500)
put('event_parser', 'huge_numbers', b'\x01{"event":"purchase","timestamp":1e400,"value":{"amount":123456789012345678901234567890.5e300,"currency":"USD"},"user":{"emailSha256":"' + b'A' * 64 + b'"}}')
put('event_parser', 'nul_bytes', b'\x01{"event":"purchase\x00","user":{"email":"a\x00@b.c"}}\n\x00\x00\n')
put('event_parser', 'bad_utf8', b'\x00{"event":"purchase","eventId":"\xff\xfe\xc3","user":{"firstName":"\xed\xa0\x80","lastName":"x"}}')
put('event_parser', 'linkedin_shape', b'\x01{"conversion":"urn:lla:llaPartnerConversion:456","conversionHappenedAt":1764319000000,"user":{"userIds":[{"idType":"SHA256_EMAIL","idValue":"X@y.example"},{"idType":"LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID","idValue":"abc"}],"userInfo":{"firstName":"a","lastName":"b"}}}')
put('event_parser', 'rfc3339', b'\x02{"event":"signup","timestamp":"2025-11-28T08:00:00.123+01:00","user":{"lead":"urn:li:leadGenFormResponse:42","externalId":"e","consent":true}}')
put('event_parser', 'escapes', b'\x01{"event":"purch\\u0061se","eventId":"\\ud83d\\ude00","user":{"email":"\\u0041@b.example"}}')

# config: YAML text
put('config', 'example', open(os.path.join(repo, 'config/relay.example.yaml'), 'rb').read())
put('config', 'minimal', b'conversions:\n  purchase: 123\n')
put('config', 'env', b'server:\n  listen: ${LISTEN:-127.0.0.1:0}\n  ingest_keys: [${KEY}]\nspool:\n  dir: ${HOME}/x\n  max_bytes: 2GiB\n')
put('config', 'durations', b'server:\n  header_timeout: 250ms\n  idle_timeout: 7d\nlinkedin:\n  retry: {initial_backoff: 1s, max_backoff: 10m}\n  rate_limit: {per_minute: 10, per_day: 1000, shared: true}\n')
put('config', 'bad', b'server:\n  bogus: 1\n  max_body_bytes: -5\nspool: [1,2]\nconversions:\n  x: urn:lla:llaPartnerConversion:abc\n')
put('config', 'anchors', b'a: &x {b: *x}\nserver: *x\n')

# record: v1 payload
def s16(b): return struct.pack('<H', len(b)) + b
def rec(rule, hap, rec_ms, flags, strs):
    return bytes([1]) + struct.pack('<QqqB', rule, hap, rec_ms, flags) + b''.join(s16(x) for x in strs)
full = [b'o-1', b'50.00', b'USD', b'a' * 64, b'b' * 64, b'fat', b'acx', b'moat', b'ext', b'urn:li:leadGenFormResponse:1', b'A', b'B', b'T', b'C', b'US']
put('record', 'full', rec(123, 1764319000000, 1764320000000, 0, full))
put('record', 'minimal', rec(456, 1, 2, 1, [b'x'] + [b''] * 14))
put('record', 'truncated', rec(123, 1, 2, 0, full)[:40])
put('record', 'bad_version', bytes([9]) + rec(123, 1, 2, 0, full)[1:])

# spool: byte 0 = .done length (mod 64) at the end, then the .log segment
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
def frame(ms, payload):
    body = struct.pack('<q', ms) + payload
    return struct.pack('<II', len(payload), crc32c(body)) + body
recs = [rec(123, 1764319000000 + i, 1764320000000, 0, [b'o-%d' % i] + full[1:]) for i in range(3)]
seg = b''.join(frame(1764320000000 + i, r) for i, r in enumerate(recs))
put('spool', 'three_records', b'\x00' + seg)
done = struct.pack('<I', 1)
put('spool', 'one_done', bytes([len(done)]) + seg + done)
put('spool', 'torn_tail', b'\x00' + seg[:-7])
put('spool', 'bad_crc', b'\x00' + seg[:20] + b'\xff' + seg[21:])
put('spool', 'done_out_of_range', bytes([8]) + seg + struct.pack('<II', 7, 0xFFFFFFFF))

# response_policy: u16 status, u16 count, u8 retry-after length, retry-after, body
def rp(status, count, ra, body): return struct.pack('>HHB', status, count, len(ra)) + ra + body
put('response_policy', 'ok_elements', rp(200, 3, b'', b'{"elements":[{"status":201},{"status":429},{"status":400,"message":"bad"}]}'))
put('response_policy', 'indices_422', rp(422, 4, b'5', b'{"status":422,"message":"Index: 0, ERROR :: /conversion :: bad\\nIndex: 3, ERROR :: x\\nERROR :: y"}'))
put('response_policy', 'indices_list', rp(400, 2, b'Wed, 21 Oct 2015 07:28:00 GMT', b'{"status":400,"message":"Invalid indices [0, 1] (0-indexed)"}'))
put('response_policy', 'revoked', rp(401, 1, b'', b'{"status":401,"serviceErrorCode":65601,"code":"REVOKED_ACCESS_TOKEN","message":"revoked"}'))
put('response_policy', 'expired', rp(401, 1, b'', b'{"status":401,"code":"EXPIRED_ACCESS_TOKEN"}'))
put('response_policy', 'retired', rp(426, 1, b'Sunday, 06-Nov-94 08:49:37 GMT', b'{"status":426,"message":"version retired"}'))
put('response_policy', 'throttled', rp(429, 10, b'Sun Nov  6 08:49:37 1994', b''))
put('response_policy', 'server', rp(503, 1, b'120', b'<html>oops</html>'))
put('response_policy', 'huge_index', rp(400, 1, b'', b'{"message":"Index: 99999999999999999999999, ERROR :: x"}'))
