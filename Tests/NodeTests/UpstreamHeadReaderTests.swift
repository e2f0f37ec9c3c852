import Testing
@testable import Node

@Suite struct UpstreamHeadReaderTests {
    private func read(_ lines: [String]) -> (UpstreamHeadReader, endedAt: Int?) {
        var reader = UpstreamHeadReader()
        for (i, line) in lines.enumerated() {
            let ended = Array(line.utf8).withUnsafeBytes { reader.take($0) }
            if ended { return (reader, i) }
        }
        return (reader, nil)
    }

    @Test func readsStatusAndFieldsWithLowerCasedNamesAndTrimmedValues() {
        let (r, ended) = read(["HTTP/1.1 429 Too Many Requests\r\n", "Content-Type:  application/json \t\r\n", "X-RateLimit-Remaining:0\r\n",
                               "x-empty:\r\n", "\r\n"])
        #expect(ended == 4)
        #expect(r.status == 429)
        #expect(r.headers.fields.map(\.name) == ["content-type", "x-ratelimit-remaining", "x-empty"])
        #expect(r.headers["content-type"] == "application/json")
        #expect(r.headers["x-ratelimit-remaining"] == "0")
        #expect(r.headers["x-empty"] == "")
    }

    @Test func interimHeadsAreDroppedAndTheFinalOneKept() {
        let (r, ended) = read(["HTTP/1.1 100 Continue\r\n", "X-Interim: yes\r\n", "\r\n", "HTTP/2 200\r\n", "server: mock\r\n", "\r\n"])
        #expect(ended == 5)
        #expect(r.status == 200)
        #expect(r.headers.fields.map(\.name) == ["server"])
    }

    @Test func malformedLinesAreIgnoredAndABadStatusNeverEndsAHead() {
        let (r, ended) = read(["HTTP/1.1 2x0 Odd\r\n", ": no name\r\n", "no colon\r\n", "\r\n"])
        #expect(ended == nil)
        #expect(r.status == 0)
        #expect(r.headers.count == 0)
    }
}
