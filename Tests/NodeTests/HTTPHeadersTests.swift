import Testing
@testable import Node

/// `HTTPHeaders` keeps fields as bytes; what it gives back as strings, lines or copies is what went in.
@Suite struct HTTPHeadersTests {
    @Test func fieldsKeepTheirOrderAndLookupsIgnoreCase() {
        var h: HTTPHeaders = [("Content-Type", "application/json"), ("x-a", "1"), ("X-A", "2"), ("empty", "")]
        #expect(h.count == 4)
        #expect(h.fields.map(\.name) == ["Content-Type", "x-a", "X-A", "empty"])
        #expect(h["content-type"] == "application/json" && h["x-a"] == "1" && h["EMPTY"] == "" && h["missing"] == nil)
        #expect(h.index(of: "X-a") == 1 && h.contains("Empty") && !h.contains("emptyy"))
        h.set("x-a", "3")
        #expect(h.fields.map(\.name) == ["Content-Type", "empty", "x-a"] && h["X-A"] == "3")
        h.remove("content-type")
        #expect(h.count == 2 && h["content-type"] == nil)
        h.remove("not-there")
        #expect(h.count == 2)
    }

    @Test func equalityComparesNamesAndValuesInOrder() {
        let a: HTTPHeaders = [("a", "1"), ("b", "2")]
        #expect(a == HTTPHeaders([("a", "1"), ("b", "2")]))
        #expect(a != HTTPHeaders([("b", "2"), ("a", "1")]))
        #expect(a != HTTPHeaders([("a", "1"), ("b", "22")]))
        #expect(a != HTTPHeaders([("a", "1")]))
        #expect(HTTPHeaders() == HTTPHeaders(capacity: 8))
    }

    @Test func linesAndCopiesLeaveOutWhatTheyAreToldToSkip() {
        let h: HTTPHeaders = [("keep", "v1"), ("drop", "x"), ("also", "v 2")]
        var out: [UInt8] = []
        h.appendLines(to: &out) { HTTPHeaders.isName($0, "drop") }
        #expect(String(decoding: out, as: UTF8.self) == "keep: v1\r\nalso: v 2\r\n")
        var copy = HTTPHeaders()
        h.appendFields(to: &copy) { HTTPHeaders.isName($0, "keep") }
        #expect(copy == HTTPHeaders([("drop", "x"), ("also", "v 2")]))
        #expect(h.lineBytes == "keep: v1\r\ndrop: x\r\nalso: v 2\r\n".utf8.count)
    }

    @Test func rawFieldsCanBeLowerCasedOnTheWayIn() {
        var h = HTTPHeaders()
        let name = Array("X-Mixed-Case_9".utf8), value = Array("Value As Sent".utf8)
        name.withUnsafeBufferPointer { n in value.withUnsafeBufferPointer { v in h.append(name: n, lowercasingName: true, value: v) } }
        #expect(h.fields.first?.name == "x-mixed-case_9" && h.fields.first?.value == "Value As Sent")
    }
}
