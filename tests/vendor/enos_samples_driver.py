"""Runs inside a virtual environment holding exactly what EnOS's Python samples pin.

``EnvisionIot/sample-code-python`` pins ``enos-poseidon==0.1.6``, ``requests==2.27.1`` and
``requests_toolbelt==0.9.1``. This driver (our code, written from reading the samples) makes
the calls the samples make, through those libraries, in the samples' order and with their
quirks: the timestamp computed once per process, poseidon's JSON POSTs with its own
``apim-accesstoken`` overridden, multipart bodies with an extra ``Content-Disposition`` field
and ids spliced into single-quoted messages without quotes. It prints one JSON line per step;
the test decides what is right.

Usage: python samples_driver.py BASE_URL APP_KEY APP_SECRET ORG ASSET PRODUCT DEVICE FILE
"""

import hashlib
import json
import os
import sys
import time

import poseidon.poseidon
import requests
from requests.models import PreparedRequest
from requests_toolbelt.multipart.encoder import MultipartEncoder

BASE, APP_KEY, APP_SECRET, ORG, ASSET, PRODUCT, DEVICE, FILE = sys.argv[1:9]
CURRENT_TIME = round(time.time() * 1000.0)  # once per process, as every sample module does


def report(step, **values):
    print(json.dumps({"step": step, **values}), flush=True)


def token_body(**extra):
    encryption = hashlib.sha256((APP_KEY + str(CURRENT_TIME) + APP_SECRET).encode()).hexdigest()
    return {"appKey": APP_KEY, "encryption": encryption.lower(), "timestamp": CURRENT_TIME, **extra}


def get_token():
    response = poseidon.poseidon.urlopen(
        APP_KEY, APP_SECRET, BASE + "/apim-token-service/v2.0/token/get", token_body()
    )
    return response["data"]["accessToken"]  # the samples index straight into the answer


def url_with(path, params):
    request = PreparedRequest()
    request.prepare_url(BASE + path, params)
    return request.url


def post_integration(action, fields, token):
    body = MultipartEncoder(fields={"Content-Disposition": "form-data", **fields})
    headers = {"apim-accesstoken": token, "Content-Type": body.content_type}
    answer = requests.post(
        url_with("/connect-service/v2.1/integration", {"action": action, "orgId": ORG}),
        headers=headers,
        data=body,
    )
    return answer.status_code, answer.content.decode("ASCII")


first = get_token()
second = get_token()  # GetToken called again in the same process: same timestamp, same encryption
report("token", first=first, second=second)

refreshed = poseidon.poseidon.urlopen(
    APP_KEY, APP_SECRET, BASE + "/apim-token-service/v2.0/token/refresh", token_body(accessToken=first)
)
report("refresh", answer=refreshed)

stamp = str(CURRENT_TIME)
status, text = post_integration(
    "postMeasurepoint",
    {
        "enos-message": "{'method': 'integration.measurepoint.post', 'version': '1.1', "
        "'params': [{'assetId':" + ASSET + ", 'time':" + stamp + ", "
        "'measurepoints': {'Int_Output':1000}}]}"
    },
    first,
)
report("measurepoint", status=status, text=text)

status, text = post_integration(
    "postEvent",
    {
        "enos-message": "{'method': 'integration.event.post', 'version': '1.1', "
        "'params': [{'productKey':" + PRODUCT + ", 'deviceKey':" + DEVICE + ", 'time':" + stamp + ", "
        "'events': {'tempBelow10': {'temperature': 9}}}]}"
    },
    first,
)
report("event", status=status, text=text)

name = os.path.basename(FILE)
with open(FILE, "rb") as handle:
    data = handle.read()
with open(FILE, "rb") as handle:
    message = (
        "{'method': 'integration.attribute.post', 'id': 123, 'version': '1.1', "
        "'params': [{'assetId': '" + ASSET + "', 'attributes': {'File_Attribute':'local://" + name + "'}}], "
        "'files': {'" + name + "': {'featureId': 'File_Attribute', 'originalFilename': '" + name + "', "
        "'fileExt': '.txt', 'assetId' : '" + ASSET + "', 'md5': '" + hashlib.md5(data).hexdigest() + "', "
        "'fileLength': " + str(len(data)) + "}}}"
    )
    status, text = post_integration(
        "postAttribute", {"enos-message": message, "enos-file": (name, handle, "text/plain")}, first
    )
report("attribute", status=status, text=text)
uri = json.loads(text)["data"][name]

download = requests.get(
    url_with(
        "/connect-service/v2.1/files",
        {"action": "download", "orgId": ORG, "assetId": ASSET, "fileUri": uri, "category": "feature"},
    ),
    headers={"apim-accesstoken": first},
)
report(
    "download",
    status=download.status_code,
    same=download.content == data,
    content_type=download.headers.get("Content-Type"),
)

deleted = poseidon.poseidon.urlopen(
    APP_KEY,
    APP_SECRET,
    url_with(
        "/connect-service/v2.1/files", {"action": "delete", "orgId": ORG, "assetId": ASSET, "fileUri": uri}
    ),
    {},
    {"apim-accesstoken": first},
)
report("delete", answer=deleted)

gone = requests.get(
    url_with(
        "/connect-service/v2.1/files",
        {"action": "download", "orgId": ORG, "assetId": ASSET, "fileUri": uri, "category": "feature"},
    ),
    headers={"apim-accesstoken": first},
)
report("gone", status=gone.status_code, answer=gone.json())
