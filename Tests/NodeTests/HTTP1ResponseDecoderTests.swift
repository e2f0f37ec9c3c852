import Testing
@testable import Node

/// The decoder behind the node's own upstream client: every case is decoded whole and byte by byte
/// (and in a few other piece sizes), which must agree.
@Suite struct HTTP1ResponseDecoderTests {
    private func decode(_ text: String, head: Bool = false, sourceLocation: SourceLocation = #_sourceLocation) -> DecodedResponse {
        let bytes = Array(text.utf8)
        let whole = HTTP1ResponseDecoder.decodeWhole(bytes, pieceSize: bytes.count, requestWasHEAD: head)
        for size in [1, 2, 3, 7, 64] {
            let pieces = HTTP1ResponseDecoder.decodeWhole(bytes, pieceSize: size, requestWasHEAD: head)
            #expect(pieces == whole, "pieces of \(size) decoded differently", sourceLocation: sourceLocation)
        }
        return whole
    }

    private func text(_ d: DecodedResponse) -> String { String(decoding: d.body, as: UTF8.self) }

    @Test func lengthDelimitedBodyKeepsTheConnection() {
        let d = decode("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"xyz\"}")
        #expect(d.error == nil)
        #expect(d.status == 200)
        #expect(d.headerNames == ["content-type", "content-length"])
        #expect(text(d) == #"{"a":"xyz"}"#)
        #expect(d.complete && d.keepAlive && d.leftover == 0)
    }

    @Test func chunkedBodyIsDechunkedWithExtensionsAndTrailersDropped() {
        let d = decode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA \r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n")
        #expect(d.error == nil)
        #expect(text(d) == "hello, world!!!")
        #expect(d.complete && d.keepAlive && d.leftover == 0)
    }

    @Test func bareLineFeedsAreAccepted() {
        let d = decode("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n")
        #expect(d.error == nil)
        #expect(text(d) == "abc")
        #expect(d.complete)
    }

    @Test func bodyWithoutLengthRunsUntilTheConnectionCloses() {
        let d = decode("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\n\n")
        #expect(d.error == nil)
        #expect(text(d) == "data: 1\n\ndata: 2\n\n")
        #expect(d.complete && !d.keepAlive)
    }

    @Test func interimResponsesAreSkipped() {
        let d = decode("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
        #expect(d.status == 201)
        #expect(d.headerNames == ["content-length"])
        #expect(text(d) == "ok")
    }

    @Test func responsesWithoutBodiesEndAtTheHead() {
        let head = decode("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", head: true)
        #expect(head.complete && head.body.isEmpty && head.keepAlive)
        #expect(decode("HTTP/1.1 204 No Content\r\n\r\n").complete)
        #expect(decode("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n").body.isEmpty)
        let zero = decode("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        #expect(zero.complete && zero.keepAlive)
    }

    @Test func connectionHeaderAndVersionDecideReuse() {
        #expect(!decode("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx").keepAlive)
        #expect(!decode("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx").keepAlive)
        #expect(decode("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx").keepAlive)
    }

    @Test func connectionTokensAreMatchedWholeIgnoringCase() {
        #expect(HTTP1ResponseDecoder.listContains("Keep-Alive, Upgrade", "keep-alive"))
        #expect(HTTP1ResponseDecoder.listContains(" upgrade ,CLOSE ", "close"))
        #expect(!HTTP1ResponseDecoder.listContains("closed", "close"))
        #expect(!HTTP1ResponseDecoder.listContains("x-close", "close"))
        #expect(!HTTP1ResponseDecoder.listContains("", "close"))
        #expect(!decode("HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n").keepAlive)
    }

    @Test func transferEncodingWinsOverLengthAndTheConnectionIsNotReused() {
        let d = decode("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        #expect(text(d) == "ok")
        #expect(d.complete && !d.keepAlive)
    }

    @Test func bytesAfterTheResponseAreLeftOver() {
        let d = decode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n")
        #expect(text(d) == "ok")
        #expect(d.leftover == 17)
    }

    @Test func repeatedEqualLengthsAreOneLength() {
        #expect(text(decode("HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok")) == "ok")
    }

    @Test(arguments: [
        ("HTTP/2 200\r\n\r\n", "not HTTP/1.x"),
        ("HTTP/1.1 20 OK\r\n\r\n", "status"),
        ("HTTP/1.1 200OK\r\n\r\n", "status"),
        ("HTTP/1.1 099 Low\r\n\r\n", "status"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", "content-length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "content-length"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", "conflicting"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "content-length"),
        ("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "field name"),
        ("HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "malformed header"),
        ("HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", "folded"),
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", "switched protocols"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1234567890abcdef0\r\n", "too large"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "longer than its size"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=\u{01}\r\nab\r\n0\r\n\r\n", "chunk extension"),
        ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "before the end of the response body"),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "before the end of the response body"),
        ("HTTP/1.1 200 OK\r\nContent-Le", "before a complete response head"),
    ])
    func malformedOrTruncatedResponsesAreRefused(_ input: String, _ expected: String) {
        let d = decode(input)
        #expect(d.error?.contains(expected) == true, "\(input.debugDescription) gave \(d.error ?? "no error")")
        #expect(!d.complete)
    }

    @Test func headsLargerThanTheLimitAreRefused() {
        let big = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Pad: \(String(repeating: "p", count: 100))\r\n", count: 700)
        let d = HTTP1ResponseDecoder.decodeWhole(Array(big.utf8), pieceSize: 4096)
        #expect(d.error?.contains("larger than") == true)
    }
}

@Suite struct PlainHTTPRequestTests {
    @Test func urlsSplitIntoAddressHostHeaderAndTarget() {
        let t = PlainHTTPTarget("http://127.0.0.1:8000/v1/chat/completions?x=1")
        #expect(t?.host == "127.0.0.1" && t?.port == 8000 && t?.authority == "127.0.0.1:8000")
        #expect(t?.requestTarget == "/v1/chat/completions?x=1")
        #expect(PlainHTTPTarget("http://[::1]:9/v1")?.host == "::1")
        #expect(PlainHTTPTarget("http://[::1]:9/v1")?.authority == "[::1]:9")
        let bare = PlainHTTPTarget("HTTP://Example.com")
        #expect(bare?.port == 80 && bare?.requestTarget == "/" && bare?.host == "Example.com")
        #expect(PlainHTTPTarget("http://h?q=1")?.requestTarget == "/?q=1")
        #expect(PlainHTTPTarget("http://h/x#frag")?.requestTarget == "/x")
    }

    @Test func anEndpointParsedOnceGivesTheSameTargetsAsWholeURLs() {
        let endpoints = ["http://127.0.0.1:8000/v1", "http://h", "http://h/", "HTTP://[::1]:9/openai", "http://h:81/a/b/"]
        let suffixes = ["/chat/completions", "/models?limit=2", "", "?q=1", "/x#frag", "/deployments/gpt%2D4/chat/completions?api-version=1"]
        for e in endpoints {
            let base = PlainHTTPTarget.endpoint(e)
            #expect(base != nil, "\(e)")
            for s in suffixes {
                #expect(base?.appending(Substring(s)) == PlainHTTPTarget(e + s), "\(e) + \(s)")
                // The head is written from the endpoint and the suffix, with no target in between.
                if let base, let whole = PlainHTTPTarget(e + s) {
                    let direct = try? PlainHTTPRequest.head(method: .GET, target: base, suffix: Substring(s), headers: [], bodyCount: 0)
                    #expect(direct == (try? PlainHTTPRequest.head(method: .GET, target: whole, headers: [], bodyCount: 0)), "\(e) + \(s)")
                }
            }
        }
        // Endpoints the own client does not take (curl does), or whose query would end up mid-URL.
        for e in ["https://api.openai.com/v1", "http://u:p@h/v1", "http://h/v1?key=1", "http://h/v1#x"] {
            #expect(PlainHTTPTarget.endpoint(e) == nil, "\(e)")
        }
    }

    @Test func urlsForCurlAreNotTaken() {
        for url in ["https://api.openai.com/v1", "http://user:pw@h/v1", "http://h:99999/", "http://h:0/", "http://:80/", "http://[::1/", "ftp://h/"] {
            #expect(PlainHTTPTarget(url) == nil, "\(url)")
        }
    }

    @Test func headCarriesHostFieldsAndLength() throws {
        let t = PlainHTTPTarget("http://10.0.0.1:8000/v1/embeddings")!
        let head = try PlainHTTPRequest.head(method: .POST, target: t, headers: [("authorization", "Bearer sk-x"), ("content-type", "application/json")], bodyCount: 42)
        #expect(String(decoding: head, as: UTF8.self) ==
            "POST /v1/embeddings HTTP/1.1\r\nhost: 10.0.0.1:8000\r\nauthorization: Bearer sk-x\r\ncontent-type: application/json\r\ncontent-length: 42\r\n\r\n")
        let get = try PlainHTTPRequest.head(method: .GET, target: t, headers: [], bodyCount: 0)
        #expect(!String(decoding: get, as: UTF8.self).contains("content-length"))
    }

    @Test func fieldsThatWouldBreakTheHeadAreRefused() {
        let t = PlainHTTPTarget("http://h/")!
        #expect(throws: PlainHTTPRequest.InvalidHeader.self) {
            try PlainHTTPRequest.head(method: .POST, target: t, headers: [("x-api-key", "sk\r\nx-evil: 1")], bodyCount: 0)
        }
        #expect(throws: PlainHTTPRequest.InvalidHeader.self) {
            try PlainHTTPRequest.head(method: .POST, target: t, headers: [("bad name", "v")], bodyCount: 0)
        }
    }

    @Test func anHTTPProxyInTheEnvironmentSendsPlainHTTPThroughCurl() {
        let t = UpstreamTimeouts()
        #expect(UpstreamPool(loops: 1, timeouts: t, environment: [:]).plainHTTPClient == .native)
        #expect(UpstreamPool(loops: 1, timeouts: t, environment: ["http_proxy": ""]).plainHTTPClient == .native)
        #expect(UpstreamPool(loops: 1, timeouts: t, environment: ["HTTP_PROXY": "http://proxy:3128"]).plainHTTPClient == .curl)
        #expect(UpstreamPool(loops: 1, timeouts: t, environment: ["ALL_PROXY": "socks5://p:1080"]).plainHTTPClient == .curl)
        #expect(UpstreamPool(loops: 1, timeouts: t, plainHTTPClient: .curl).plainHTTPClient == .curl)
    }
}
