import Testing
@testable import Node

@Suite struct RequestTargetsAndHeadBytesTests {
    private func lookup(_ table: LiteralTable, _ text: String, foldingCase: Bool = false) -> String? {
        Array(text.utf8).withUnsafeBufferPointer { table.lookup($0, foldingCase: foldingCase) }
    }

    @Test func lookupsFoldCaseOnlyWhenAskedAndOnlyForLetters() {
        let names = LiteralTable(["x-stainless-package-version", "x-stainless-lang", "anthropic-version"])
        #expect(lookup(names, "X-Stainless-Package-Version", foldingCase: true) == "x-stainless-package-version")
        #expect(lookup(names, "X-Stainless-Package-Versioo", foldingCase: true) == nil)
        #expect(lookup(names, "x-stainless-lang-", foldingCase: true) == nil)
        // Folding applies to letters only: '-' (0x2D) is not '\r' (0x0D) in disguise.
        #expect(lookup(names, "x\rstainless-lang", foldingCase: true) == nil)
        #expect(lookup(names, "Anthropic-Version") == nil)
    }

    @Test func apiPathsComeBackAsTheirLiterals() {
        #expect(lookup(CommonRequestTargets.paths, "/v1/chat/completions") == "/v1/chat/completions")
        #expect(lookup(CommonRequestTargets.paths, "/v1/chat/completionz") == nil)
        #expect(lookup(CommonRequestTargets.paths, "") == nil)
        #expect(lookup(CommonRequestTargets.paths, String(repeating: "/", count: 500)) == nil)
    }

    /// Names lower-cased, values as sent, in order — from the request parser and from curl's head reader.
    @Test func theParsersKeepFieldsAsBytesWithLowerCaseNames() throws {
        var parser = HTTPRequestParser()
        let text = "POST /v1/chat/completions HTTP/1.1\r\nHost: p\r\nX-Stainless-Runtime-Version: 3.12.1\r\n"
            + "Content-Type: application/json\r\nX-Custom-Long-Header-Name: Application/JSONx\r\nContent-Length: 2\r\n\r\n{}"
        let bytes = Array(text.utf8)
        let (_, output) = try bytes.withUnsafeBufferPointer { p throws(HTTPParseError) in try parser.parse(p) }
        guard case .request(let parsed) = output else {
            Issue.record("no request parsed")
            return
        }
        let r = parsed.request
        #expect(r.target == "/v1/chat/completions")
        #expect(r.headers.fields.map(\.name) == ["host", "x-stainless-runtime-version", "content-type", "x-custom-long-header-name", "content-length"])
        #expect(r.headers["content-type"] == "application/json")
        #expect(r.headers["X-CUSTOM-LONG-HEADER-NAME"] == "Application/JSONx")
        #expect(r.headers.index(of: "content-length") == 4 && r.headers.index(of: "expect") == nil)
        #expect(r.headers.withValue(of: "Host") { String(decoding: $0, as: UTF8.self) } == "p")

        var reader = UpstreamHeadReader()
        for line in ["HTTP/1.1 200 OK\r\n", "Content-Type: text/event-stream; charset=utf-8\r\n", "OpenAI-Processing-MS:  12 \r\n", "\r\n"] {
            _ = Array(line.utf8).withUnsafeBytes { reader.take($0) }
        }
        #expect(reader.headers.fields.map(\.name) == ["content-type", "openai-processing-ms"])
        #expect(reader.headers["content-type"] == "text/event-stream; charset=utf-8")
        #expect(reader.headers["openai-processing-ms"] == "12")
    }
}

@Suite struct LiteralTableTests {
    @Test func containsIsExactAndEmptyOrLongNamesAreNotIn() {
        let t = LiteralTable(["te", "connection", "transfer-encoding", "date"])
        #expect(t.contains("te") && t.contains("date") && t.contains("transfer-encoding"))
        #expect(!t.contains("Date"))  // the parsers give names lower-case: exact bytes
        #expect(!t.contains("") && !t.contains("dat") && !t.contains("dates") && !t.contains(String(repeating: "x", count: 300)))
        #expect(ProviderRouting.droppedRequestHeaders.contains("authorization"))
        #expect(!ProviderRouting.droppedRequestHeaders.contains("content-type"))
        #expect(ProviderRouting.droppedResponseHeaders.contains("date"))
    }
}
