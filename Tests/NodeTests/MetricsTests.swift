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

    @Test func proxyRouteLabelsAreTheKnownPathsOrOther() {
        let pm = ProxyMetrics(routes: ProxyHandler.knownRoutes)
        func label(_ path: Substring) -> String { pm.routes[pm.route(path)] }
        #expect(label("/v1/chat/completions") == "/v1/chat/completions")
        #expect(label("/v1/messages/count_tokens") == "/v1/messages/count_tokens")
        #expect(label("/v1/chat/completions/x") == "other")
        #expect(label("/v1/files/file-abc123") == "other")
        #expect(ProxyHandler.knownRoutes.allSatisfy { label(Substring($0)) == $0 })
    }

    @Test func proxyRequestMetricsAreRenderedWithTheRest() {
        let m = Metrics()
        m.counter("llmp_requests_total", help: "r", labels: ["route", "provider", "status"])
        m.histogram("llmp_request_duration_seconds", help: "d", labels: ["route"], buckets: [0.01, 0.1])
        m.histogram("llmp_upstream_duration_seconds", help: "u", labels: ["provider"], buckets: [0.01, 0.1])
        m.histogram("llmp_proxy_overhead_seconds", help: "o", buckets: [0.01, 0.1])
        m.counter("llmp_tokens_total", help: "t", labels: ["vkey", "model", "kind"])
        let pm = ProxyMetrics(routes: ["/v1/chat/completions"], bounds: [0.01, 0.1], maxTokenSeries: 2)
        m.onScrape { pm.publish(into: $0) }
        let chat = pm.route("/v1/chat/completions")
        pm.record(route: chat, provider: .openai, status: 200, seconds: 0.0625, upstreamSeconds: 0.0546875, tokens: ("vk_a", "gpt", 10, 5))
        pm.record(route: chat, provider: .openai, status: 200, seconds: 0.5, upstreamSeconds: 0.25, tokens: ("vk_a", "gpt", 1, 2))
        pm.record(route: pm.route("/v1/nope"), provider: nil, status: 401, seconds: 0.001, upstreamSeconds: nil, tokens: nil)
        pm.record(route: chat, provider: .openai, status: 200, seconds: 0.0625, upstreamSeconds: 0.0546875, tokens: ("vk_b", "gpt", 7, 0))
        pm.record(route: chat, provider: .openai, status: 200, seconds: 0.0625, upstreamSeconds: 0.0546875, tokens: ("vk_c", "gpt", 3, 4))
        var text = m.render()
        for line in [#"llmp_requests_total{route="/v1/chat/completions",provider="openai",status="200"} 4"#,
                     #"llmp_requests_total{route="other",provider="none",status="401"} 1"#,
                     #"llmp_request_duration_seconds_bucket{route="/v1/chat/completions",le="0.01"} 0"#,
                     #"llmp_request_duration_seconds_bucket{route="/v1/chat/completions",le="0.1"} 3"#,
                     #"llmp_request_duration_seconds_bucket{route="/v1/chat/completions",le="+Inf"} 4"#,
                     #"llmp_request_duration_seconds_count{route="/v1/chat/completions"} 4"#,
                     #"llmp_request_duration_seconds_sum{route="/v1/chat/completions"} 0.6875"#,
                     #"llmp_request_duration_seconds_bucket{route="other",le="0.01"} 1"#,
                     #"llmp_upstream_duration_seconds_count{provider="openai"} 4"#,
                     #"llmp_proxy_overhead_seconds_bucket{le="0.01"} 3"#,
                     #"llmp_proxy_overhead_seconds_bucket{le="+Inf"} 4"#,
                     #"llmp_tokens_total{vkey="vk_a",model="gpt",kind="prompt"} 11"#,
                     #"llmp_tokens_total{vkey="vk_a",model="gpt",kind="completion"} 7"#,
                     #"llmp_tokens_total{vkey="vk_b",model="gpt",kind="prompt"} 7"#,
                     // A third (key, model) pair is past the cap of two.
                     #"llmp_tokens_total{vkey="other",model="other",kind="completion"} 4"#] {
            #expect(text.contains(line + "\n"), "missing \(line) in\n\(text)")
        }
        #expect(!text.contains("vk_c"))
        // Totals, not increments: a second scrape shows the same figures plus what happened since.
        pm.record(route: chat, provider: .openai, status: 200, seconds: 0.05, upstreamSeconds: 0.04, tokens: nil)
        text = m.render()
        #expect(text.contains(#"llmp_requests_total{route="/v1/chat/completions",provider="openai",status="200"} 5"# + "\n"))
        #expect(text.contains(#"llmp_request_duration_seconds_count{route="/v1/chat/completions"} 5"# + "\n"))
    }
}
