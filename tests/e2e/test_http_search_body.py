"""The search body's vector is read by a fast path (src/server/fast_vector.c)
when the body looks ordinary and by jansson otherwise: both must give the
same answers and refuse the same bodies."""
import re

import numpy as np
import pytest

from server import NeedleServer, err

DIM = 8


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with NeedleServer(tmp_path_factory.mktemp("fastvec") / "data") as s:
        st, _ = s.request("PUT", "/v1/collections/c", {"dimension": DIM, "metric": "l2"})
        assert st == 201
        rng = np.random.default_rng(7)
        pts = [{"id": i, "vector": [float(x) for x in rng.normal(size=DIM)]} for i in range(200)]
        assert s.request("POST", "/v1/collections/c/points", {"points": pts})[0] == 200
        yield s


def search_raw(s, text):
    return s.request("POST", "/v1/collections/c/search", raw=text.encode())


def test_same_results_whatever_the_form(srv):
    q = [0.5, -1.25, 3.0, 0.0, 1e-3, -2.5e1, 7.0, 0.125]
    nums = ",".join(repr(x) for x in q)
    forms = [
        '{"vector":[%s],"k":5,"exact":true}' % nums,                          # fast
        '{"k":5,"exact":true,"vector":[%s]}' % nums,                          # fast, vector last
        '{"k":5,"with_payload":false,"exact":true,"vector":[ %s ]}' % nums.replace(",", " , "),
        '{"exact":true,"vec\\u0074or":[%s],"k":5}' % nums,                    # escaped key: jansson
        '{"vector":[0.5,-1.25,3,0,1E-3,-2.5e+1,7,1.25e-1],"k":5,"exact":true}',
    ]
    answers = []
    for f in forms:
        st, body = search_raw(srv, f)
        assert st == 200, (f, body)
        answers.append([(h["id"], h["distance"]) for h in body["results"]])
    assert all(a == answers[0] for a in answers), answers
    # and the distances are the true ones
    st, pt = srv.request("GET", f"/v1/collections/c/points/{answers[0][0][0]}")
    d = np.linalg.norm(np.array(pt["vector"], np.float32) - np.array(q, np.float32))
    assert abs(d - answers[0][0][1]) < 1e-4


@pytest.mark.parametrize("vector, match", [
    ("[1,2,3]", "vector has 3 values; the collection has dimension 8"),
    ("[1,2,3,4,5,6,7,01]", "not valid JSON"),          # leading zero
    ("[1,2,3,4,5,6,7,.5]", "not valid JSON"),
    ("[1,2,3,4,5,6,7,\"8\"]", "vector value 7 is not a number"),
    ("[1,2,3,4,5,6,7,1e39]", "vector value 7 is out of the float range"),
    ("[1,2,3,4,5,6,7,NaN]", "not valid JSON"),
    ("[1,2,3,4,5,6,7,8,]", "not valid JSON"),
    ("[1,2,3,4,5,6,7,8", "not valid JSON"),
    ("{}", "'vector' must be an array"),
    ("[]", "vector has 0 values"),
    # beyond what jansson reads: the fast reader must not accept them
    ("[1,2,3,4,5,6,7,12345678901234567890]", "too big integer"),
    ("[1,2,3,4,5,6,7,-12345678901234567890]", "too big negative integer"),
    ("[1,2,3,4,5,6,7,1e400]", "real number overflow"),
])
def test_bad_vectors_refused_alike(srv, vector, match):
    """The plain key takes the fast reader; the escaped key "vec\\u0074or"
    makes the body jansson's. Same status, code and message, except that
    the JSON parser's column counts the 5 bytes the escape adds."""
    fast = err(search_raw(srv, '{"vector":%s,"k":3}' % vector), 400, "invalid_argument")
    slow = err(search_raw(srv, '{"vec\\u0074or":%s,"k":3}' % vector), 400, "invalid_argument")
    assert match in fast, fast
    shifted = re.sub(r"\bcolumn (\d+)", lambda m: f"column {int(m.group(1)) + 5}", fast)
    assert slow == shifted, (fast, slow)


def refused_alike(srv, plain, escaped, *names):
    """The plain body (fast reader) and the escaped-key one (jansson) both
    get 400 invalid_argument, each message holding every one of `names`
    and the two the same up to the JSON parser's position ("at line L
    column C"). Returns both messages."""
    fast = err(search_raw(srv, plain), 400, "invalid_argument")
    slow = err(search_raw(srv, escaped), 400, "invalid_argument")
    for n in names:
        assert n in fast and n in slow, (n, fast, slow)
    pos = r" at line \d+ column \d+$"
    assert re.search(pos, fast) and re.search(pos, slow), (fast, slow)
    assert re.sub(pos, "", fast) == re.sub(pos, "", slow), (fast, slow)
    return fast, slow


def test_duplicate_vector_key_refused(srv):
    refused_alike(srv, '{"vector":[1,2,3,4,5,6,7,8],"k":3,"vector":[1,2,3,4,5,6,7,8]}',
                  '{"vec\\u0074or":[1,2,3,4,5,6,7,8],"k":3,"vector":[1,2,3,4,5,6,7,8]}',
                  "not valid JSON", "duplicate")


def test_trailing_garbage_refused(srv):
    refused_alike(srv, '{"vector":[1,2,3,4,5,6,7,8],"k":3} x', '{"vec\\u0074or":[1,2,3,4,5,6,7,8],"k":3} x',
                  "not valid JSON")


@pytest.mark.parametrize("body", [
    '{"vector":[1,2,3,4,5,6,7,8],"k":3,"vector":[1,2,3,4,5,6,7,8]}',
    '{"vector":[1,2,3,4,5,6,7,8],"k":3} x',
    '{"vector":[1,\n2,3,4,5,6,7,8],\n"k":3} x',
    '{"vector":[1.25, 2.5, 3.75, 4, 5, 6, 7, 8],"k":}',
])
def test_parse_errors_point_where_the_client_wrote(srv, body):
    """After the fast reader took the vector, jansson's line and column of
    a syntax error are those of the body as sent: the same message as the
    same text sent to /count, which only jansson reads."""
    at_search = err(search_raw(srv, body), 400, "invalid_argument")
    at_count = err(srv.request("POST", "/v1/collections/c/count", raw=body.encode()), 400,
                   "invalid_argument")
    assert re.search(r"at line \d+ column \d+$", at_search), at_search
    assert at_search == at_count
