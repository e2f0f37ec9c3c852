import Testing
@testable import Node

/// The memcmp/memchr text helpers answer as the generic collection walks they replace.
@Suite struct UTF8BytesTests {
    static let texts = ["", "/", "/v1", "/v1/messages", "/v1/messages/count_tokens?beta=true", "/v1/mess", "/é/v1?x=ü", "?q", "a?b?c", "#frag", "/p#f?q"]
    static let prefixes: [StaticString] = ["", "/", "/v1/", "/v1/messages", "/v1/messages/count_tokens?beta=true!", "/é", "?"]

    @Test func prefixTestsAgreeWithStartsWith() {
        for text in Self.texts {
            let sub = Substring(text)
            let inner = ("xx" + text + "yy").dropFirst(2).dropLast(2)  // a slice not at its string's start
            for p in Self.prefixes {
                let expected = text.utf8.starts(with: p.description.utf8)
                #expect(text.hasUTF8Prefix(p) == expected, "\(text) \(p)")
                #expect(sub.hasUTF8Prefix(p) == expected, "\(text) \(p)")
                #expect(inner.hasUTF8Prefix(p) == expected, "\(text) \(p)")
                #expect(inner.hasUTF8Prefix(p.description) == expected, "\(text) \(p)")
            }
        }
    }

    @Test func byteSearchFindsTheSameIndexAsFirstIndex() {
        for text in Self.texts {
            let inner = ("#?" + text).dropFirst(2)
            for byte in [UInt8(ascii: "?"), UInt8(ascii: "#"), UInt8(ascii: "/"), 0xC3] {
                #expect(text.utf8Index(of: byte) == text.utf8.firstIndex(of: byte), "\(text) \(byte)")
                #expect(inner.utf8Index(of: byte) == inner.utf8.firstIndex(of: byte), "\(text) \(byte)")
            }
        }
    }

    @Test func bufferEqualityIsByteForByte() {
        for (bytes, literal, equal) in [("HTTP/1.1", "HTTP/1.1", true), ("HTTP/1.0", "HTTP/1.1", false), ("HTTP/1.", "HTTP/1.1", false),
                                        ("", "", true), ("HTTP/1.11", "HTTP/1.1", false)] as [(String, StaticString, Bool)] {
            #expect(Array(bytes.utf8).withUnsafeBufferPointer { $0.equals(literal) } == equal, "\(bytes) \(literal)")
        }
    }

    @Test func aRequestsPathAndQueryFollowItsTarget() {
        var r = HTTPRequest(method: .GET, target: "/v1/models?limit=2")
        #expect(r.path == "/v1/models" && r.query == "limit=2")
        r.target = "/é/ü?a=?b"
        #expect(r.path == "/é/ü" && r.query == "a=?b")
        r.target = "/healthz"
        #expect(r.path == "/healthz" && r.query == nil)
        r.target = "/x?"
        #expect(r.path == "/x" && r.query == "")
    }
}
