import Testing
@testable import Node

@Suite struct MetricsTests {
    @Test func histogramSeriesKeepTheirOwnCumulativeBuckets() {
        let m = Metrics()
        m.histogram("h", help: "h", labels: ["route"], buckets: [0.1, 1])
        m.observe("h", ["a"], 0.05)
        m.observe("h", ["b"], 0.5)
        m.observe("h", ["a"], 5)
        m.observe("h", ["a"], 0.5)
        let text = m.render()
        for line in ["h_bucket{route=\"a\",le=\"0.1\"} 1", "h_bucket{route=\"a\",le=\"1\"} 2", "h_bucket{route=\"a\",le=\"+Inf\"} 3",
                     "h_count{route=\"a\"} 3", "h_sum{route=\"a\"} 5.55",
                     "h_bucket{route=\"b\",le=\"0.1\"} 0", "h_bucket{route=\"b\",le=\"1\"} 1", "h_count{route=\"b\"} 1"] {
            #expect(text.contains(line + "\n"), "missing \(line) in\n\(text)")
        }
    }

    @Test func seriesPastTheCapAreCountedAsOther() {
        let m = Metrics(maxSeries: 2)
        m.histogram("h", help: "h", labels: ["k"], buckets: [1])
        m.counter("c", help: "c", labels: ["k"])
        for k in ["x", "y", "z", "w", "x"] {
            m.observe("h", [k], 0.5)
            m.add("c", [k])
        }
        let text = m.render()
        #expect(text.contains("h_count{k=\"x\"} 2\n"))
        #expect(text.contains("h_count{k=\"other\"} 2\n"))
        #expect(!text.contains("k=\"z\""))
        #expect(text.contains("c{k=\"x\"} 2\n"))
        #expect(text.contains("c{k=\"other\"} 2\n"))
    }
}
