import Testing
@testable import Storage

/// How a totals query's window is cut: whole hours from the hourly sums, part-hours from the records.
@Suite struct UsageWindowTests {
    let h: Int64 = 3_600_000
    let t: Int64 = 1_700_002_800_000  // an hour's start
    typealias Span = UsageWindow.Span
    typealias Records = UsageWindow.RecordSpan

    @Test func aWindowOfWholeHoursReadsOnlyTheSums() {
        #expect(UsageWindow(since: t, until: t + 3 * h) == UsageWindow(hours: Span(from: t, to: t + 3 * h), records: []))
        #expect(UsageWindow(since: nil, until: nil) == UsageWindow(hours: Span(from: nil, to: nil), records: []))
    }

    @Test func partHoursAtEitherEndAreReadFromTheRecords() {
        #expect(UsageWindow(since: t + 10, until: t + 3 * h - 10)
                == UsageWindow(hours: Span(from: t + h, to: t + 2 * h), records: [Records(from: t + 10, to: t + h), Records(from: t + 2 * h, to: t + 3 * h - 10)]))
        #expect(UsageWindow(since: t + 1, until: nil) == UsageWindow(hours: Span(from: t + h, to: nil), records: [Records(from: t + 1, to: t + h)]))
        #expect(UsageWindow(since: nil, until: t + 5) == UsageWindow(hours: Span(from: nil, to: t), records: [Records(from: t, to: t + 5)]))
    }

    @Test func aWindowWithoutAWholeHourReadsOnlyRecords() {
        #expect(UsageWindow(since: t + 5, until: t + 50) == UsageWindow(hours: nil, records: [Records(from: t + 5, to: t + 50)]))
        // Across one boundary with no whole hour between.
        #expect(UsageWindow(since: t - 1, until: t + 1) == UsageWindow(hours: nil, records: [Records(from: t - 1, to: t + 1)]))
    }

    @Test func anEmptyOrPre1970WindowSelectsNothingOrEverything() {
        #expect(UsageWindow(since: t, until: t) == UsageWindow(hours: nil, records: []))
        #expect(UsageWindow(since: t + h, until: t) == UsageWindow(hours: nil, records: []))
        #expect(UsageWindow(since: nil, until: -5) == UsageWindow(hours: nil, records: []))
        #expect(UsageWindow(since: -5, until: nil) == UsageWindow(since: 0, until: nil))
    }
}
