import Testing
@testable import Storage

/// A usage record made with a new id keeps it as numbers and writes it out when read: the same text every
/// time, in the time-ordered format stored records have always had.
@Suite struct UsageRecordIDTests {
    private func record(endedAt: Int64) -> UsageRecord {
        UsageRecord(newIDEndingAt: endedAt, virtualKeyID: "vk_a", connectionID: "cn_a", model: "m", promptTokens: 3,
                    completionTokens: 4, statusCode: 200, latencyMillis: 5, stream: false, startedAt: endedAt - 5, nodeID: "n")
    }

    @Test func aNewIDIsTimeOrderedStableAndUnique() {
        let a = record(endedAt: 0x0123_4567_89ab), b = record(endedAt: 0x0123_4567_89ab)
        #expect(a.id == a.id)
        #expect(a.id.utf8.count == 30)
        #expect(a.id.hasPrefix("u_0123456789ab"))
        #expect(a.id.dropFirst(14).allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(a.id != b.id)
        #expect(a != b)
        let ids = Set((0..<1000).map { _ in record(endedAt: 1).id })
        #expect(ids.count == 1000)
    }

    @Test func aRecordEqualsItsCopyWithTheIDAsTextAndTakesANewIDWhenSet() {
        let a = record(endedAt: 1_764_460_000_000)
        var copy = a
        copy.id = a.id
        #expect(copy == a)
        let read = UsageRecord(id: a.id, virtualKeyID: a.virtualKeyID, connectionID: a.connectionID, model: a.model,
                               promptTokens: a.promptTokens, completionTokens: a.completionTokens, statusCode: a.statusCode,
                               latencyMillis: a.latencyMillis, stream: a.stream, startedAt: a.startedAt, endedAt: a.endedAt, nodeID: a.nodeID)
        #expect(read == a)
        copy.id = "u_other"
        #expect(copy.id == "u_other")
        #expect(copy != a)
        copy.id = a.id
        copy.promptTokens += 1
        #expect(copy != a)
    }
}
