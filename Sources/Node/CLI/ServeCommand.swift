import Glibc
import RedisClient
import Storage
import Synchronization

/// `llm-proxy serve`: runs a node.
enum ServeCommand {
    static let spec = CommandSpec(
        name: "serve",
        summary: "Run a proxy node.",
        discussion: "Listens for OpenAI-, Azure- and Anthropic-style API calls under /v1/, plus /healthz and /readyz.\nSIGTERM or SIGINT drains: stop accepting, finish in-flight requests up to --shutdown-grace, exit.",
        options: [
            OptionSpec("listen", value: "host:port", env: "LLM_PROXY_LISTEN", default: "0.0.0.0:8132", help: "Address to listen on."),
            OptionSpec("event-loops", value: "n", env: "LLM_PROXY_EVENT_LOOPS", default: String(EventLoopGroup.defaultLoopCount),
                       help: "Event-loop threads (one per core by default)."),
            OptionSpec("max-connections", value: "n", env: "LLM_PROXY_MAX_CONNECTIONS", default: "16384", help: "Open client connections at most."),
            OptionSpec("max-body-bytes", value: "n", env: "LLM_PROXY_MAX_BODY_BYTES", default: "33554432", help: "Largest request body accepted (413 above)."),
            OptionSpec("max-header-bytes", value: "n", env: "LLM_PROXY_MAX_HEADER_BYTES", default: "65536", help: "Largest request head accepted (431 above)."),
            OptionSpec("max-header-count", value: "n", env: "LLM_PROXY_MAX_HEADER_COUNT", default: "128", help: "Most header fields accepted (431 above)."),
            OptionSpec("header-timeout", value: "duration", env: "LLM_PROXY_HEADER_TIMEOUT", default: "10s", help: "Time allowed to send a request head (408 after)."),
            OptionSpec("body-timeout", value: "duration", env: "LLM_PROXY_BODY_TIMEOUT", default: "30s", help: "Longest pause allowed while sending a request body (408 after)."),
            OptionSpec("idle-timeout", value: "duration", env: "LLM_PROXY_IDLE_TIMEOUT", default: "75s", help: "How long an idle keep-alive connection is kept."),
            OptionSpec("drain-delay", value: "duration", env: "LLM_PROXY_DRAIN_DELAY", default: "0s",
                       help: "After SIGTERM, keep accepting this long with /readyz at 503, so load balancers stop sending first."),
            OptionSpec("shutdown-grace", value: "duration", env: "LLM_PROXY_SHUTDOWN_GRACE", default: "30s", help: "How long in-flight requests may run after SIGTERM."),
            OptionSpec("usage-retention", value: "duration", env: "LLM_PROXY_USAGE_RETENTION", default: "90d",
                       help: "Usage records older than this are deleted, in small batches, every quarter of it (at most hourly); 0 keeps every record."),
            OptionSpec("node-id", value: "id", env: "LLM_PROXY_NODE_ID", help: "This node's name in usage records (default: host name and pid)."),
            OptionSpec("upstream-connect-timeout", value: "duration", env: "LLM_PROXY_UPSTREAM_CONNECT_TIMEOUT", default: "10s", help: "Connecting to a provider (502 after)."),
            OptionSpec("upstream-first-byte-timeout", value: "duration", env: "LLM_PROXY_UPSTREAM_FIRST_BYTE_TIMEOUT", default: "600s", help: "Waiting for a provider's response head (504 after); the OpenAI and Anthropic SDKs wait 600s."),
            OptionSpec("upstream-idle-timeout", value: "duration", env: "LLM_PROXY_UPSTREAM_IDLE_TIMEOUT", default: "600s", help: "Silence allowed mid-response, as while a reasoning model thinks (the stream is cut after)."),
            OptionSpec("plain-http-client", value: "client", env: "LLM_PROXY_PLAIN_HTTP_CLIENT", default: "native",
                       help: "For http:// providers: native (the proxy's own HTTP/1.1 client, cheaper) or curl. https:// always uses curl."),
            OptionSpec("redis-url", value: "url", env: "LLM_PROXY_REDIS_URL",
                       help: "Redis for global limits shared by every node (redis://[user:password@]host:port[/db]); without it limits are local to this node."),
            OptionSpec("redis-timeout", value: "duration", env: "LLM_PROXY_REDIS_TIMEOUT", default: "50ms",
                       help: "Deadline for one limiter call to Redis; past it the request is admitted locally."),
            OptionSpec("redis-failure", value: "policy", env: "LLM_PROXY_REDIS_FAILURE", default: "local",
                       help: "When Redis is away: local (this node's share of each limit), fail-open (no limits) or fail-closed (503)."),
            OptionSpec("access-log", value: "bool", env: "LLM_PROXY_ACCESS_LOG", default: "true",
                       help: "One JSON log line per proxied request (ids, status, latency, tokens; never keys or prompts)."),
            OptionSpec("log-level", value: "level", env: "LLM_PROXY_LOG_LEVEL", default: "info", help: "debug, info, warning or error."),
        ],
        run: { try await run($0) }
    )

    static func configuration(_ p: ParsedCommand) throws -> HTTPServerConfiguration {
        let listenText = try p.required("listen")
        guard let listen = HostPort(parsing: listenText) else {
            throw UsageError("--listen expects HOST:PORT (e.g. 0.0.0.0:8132 or [::1]:8132), got \"\(listenText)\"", commandPath: p.path)
        }
        var config = HTTPServerConfiguration(listen: listen)
        config.maxConnections = try p.int("max-connections", min: 1)!
        config.limits.maxBodyBytes = try p.int("max-body-bytes", min: 0)!
        config.limits.maxHeaderBytes = try p.int("max-header-bytes", min: 1024)!
        config.limits.maxHeaderCount = try p.int("max-header-count", min: 8)!
        config.headerTimeoutNanos = try p.duration("header-timeout")!
        config.bodyTimeoutNanos = try p.duration("body-timeout")!
        config.idleTimeoutNanos = try p.duration("idle-timeout")!
        return config
    }

    static func run(_ p: ParsedCommand) async throws -> Int32 {
        let config = try configuration(p)
        let loops = try p.int("event-loops", min: 1)!
        let grace = try p.duration("shutdown-grace")!
        guard let level = LogLevel(name: p.string("log-level") ?? "info") else {
            throw UsageError("--log-level expects debug, info, warning or error", commandPath: p.path)
        }
        let retentionNanos = try p.duration("usage-retention")!
        guard retentionNanos == 0 || retentionNanos >= 1_000_000_000 else {
            throw UsageError("--usage-retention expects 0 (keep every usage record) or at least 1s", commandPath: p.path)
        }
        let log = Logger(level: level)
        MongoDriverLog.route { level, domain, message in
            log.log(LogLevel(level), "mongodb driver", [("domain", .string(domain)), ("detail", .string(message))])
        }

        let opened: StoreAccess.Opened
        do {
            opened = try await StoreAccess.open(p)
        } catch let e as StoreError {
            log.error("cannot open the store", [("error", .string(e.message))])
            return 1
        }
        let store = opened.store
        log.info("store ready", [("backend", .string(store.backend)), ("master_key", .string(StoreAccess.describe(opened.keySource)))])

        let group = try EventLoopGroup(loopCount: loops)
        let serverBox = Mutex<HTTPServer?>(nil)
        let limiterBox = Mutex<Limiter?>(nil)
        var router = Router()

        var timeouts = UpstreamTimeouts()
        timeouts.connect = Int(try p.duration("upstream-connect-timeout")! / 1_000_000)
        timeouts.firstByte = Int(try p.duration("upstream-first-byte-timeout")! / 1_000_000)
        timeouts.idle = Int(try p.duration("upstream-idle-timeout")! / 1_000_000)
        guard let plainClient = UpstreamPool.PlainHTTPClientChoice(rawValue: p.string("plain-http-client") ?? "native") else {
            throw UsageError("--plain-http-client expects native or curl", commandPath: p.path)
        }
        if plainClient == .native, let variable = UpstreamPool.proxyVariable(in: p.environment) {
            log.info("plain-HTTP providers go through curl, which honours the HTTP proxy set in the environment", [("variable", .string(variable))])
        }
        let keys = KeyCache(store: store, box: opened.box)
        // Arm the cache with the current revision now, so the first requests' keys are cached at once.
        keys.observe(revision: try await store.revision())
        let watcher = RevisionWatcher(store: store, keys: keys, log: log)
        watcher.start()
        let usage = UsageWriter(store: store, log: log)
        usage.start()
        let retention = retentionNanos == 0 ? nil : UsageRetention(store: store, log: log, retentionMillis: Int64(retentionNanos / 1_000_000))
        retention?.start()
        if let retention {
            log.info("usage records are pruned", [("retention_s", .int(Int(retention.retentionMillis / 1000))),
                                                  ("every_s", .int(Int(retention.intervalMillis / 1000)))])
        } else {
            log.info("usage records are kept forever (--usage-retention 0)")
        }
        let nodeID = p.string("node-id") ?? defaultNodeID()
        let localLimiter = LocalLimiter()
        var global: GlobalLimiter?
        var heartbeat: NodeHeartbeat?
        var redisConnections: [RedisConnection] = []
        if let redisURL = p.string("redis-url"), !redisURL.isEmpty {
            var redisConfig = try RedisConfiguration(url: redisURL)
            redisConfig.commandTimeoutNanos = try p.duration("redis-timeout")!
            redisConfig.coalesceWrites = true  // many requests per loop pass share each connection
            redisConnections = group.loops.map { RedisConnection(configuration: redisConfig, loop: $0) }
            for c in redisConnections { c.start() }
            global = GlobalLimiter(connections: redisConnections, deadlineNanos: redisConfig.commandTimeoutNanos)
            log.info("global limits through Redis", [("redis", .string(redisConfig.redacted))])
        }
        guard let policy = RedisFailurePolicy(rawValue: p.string("redis-failure") ?? "local") else {
            throw UsageError("--redis-failure expects local, fail-open or fail-closed", commandPath: p.path)
        }
        let limiter = Limiter(local: localLimiter, global: global, policy: policy, log: log)
        limiterBox.withLock { $0 = limiter }
        let metrics = Metrics()
        NodeMetrics.register(metrics)
        limiter.metrics = metrics
        if let first = redisConnections.first {
            heartbeat = NodeHeartbeat(connection: first, nodeID: nodeID, limiter: limiter, log: log)
            heartbeat?.start()
        }
        keys.metrics = metrics
        usage.metrics = metrics
        let redisLinks = redisConnections
        let upstreams = UpstreamPool(loops: loops, timeouts: timeouts, plainHTTPClient: plainClient, environment: p.environment)
        let proxy = ProxyHandler(keys: keys, upstreams: upstreams, usage: usage,
                                 limiter: limiter, log: log, nodeID: nodeID, metrics: metrics, accessLog: p.flag("access-log"))
        metrics.onScrape { proxy.requestMetrics.publish(into: $0) }
        metrics.onScrape { m in
            m.set("llmp_open_connections", [], Double(serverBox.withLock { $0 }?.openConnections ?? 0))
            m.set("llmp_open_streams", [], Double(Relay.openStreams.withLock { $0 }))
            m.set("llmp_usage_queue_depth", [], Double(usage.depth))
            m.setTotal("llmp_usage_dropped_total", [], Double(usage.dropped))
            m.setTotal("llmp_usage_written_total", [], Double(usage.written))
            m.setTotal("llmp_store_errors_total", ["usage_write"], Double(usage.failedBatches))
            if let retention {
                m.setTotal("llmp_usage_pruned_total", [], Double(retention.pruned))
                m.setTotal("llmp_store_errors_total", ["usage_prune"], Double(retention.failedRounds))
            }
            m.setTotal("llmp_store_errors_total", ["key_lookup"], Double(proxy.keyLookupFailures.withLock { $0 }))
            m.set("llmp_key_cache_entries", [], Double(keys.count))
            m.setTotal("llmp_upstream_connections_opened_total", [], Double(upstreams.plainStats.opened.load(ordering: .relaxed)))
            m.setTotal("llmp_upstream_retries_total", [], Double(upstreams.plainStats.retried.load(ordering: .relaxed)))
            m.set("llmp_upstream_idle_connections", [], Double(upstreams.plainStats.idle.load(ordering: .relaxed)))
            let mode = limiter.currentMode
            m.set("llmp_limiter_mode", ["global"], mode == "global" ? 1 : 0)
            m.set("llmp_limiter_mode", ["local"], mode == "global" ? 0 : 1)
            m.setTotal("llmp_limiter_fallbacks_total", [], Double(limiter.fallbacks.withLock { $0 }))
            if !redisLinks.isEmpty {
                m.set("llmp_redis_up", [], redisLinks.allSatisfy { $0.health != .down } ? 1 : 0)
            }
        }
        let adminKey = p.environment["LLM_PROXY_ADMIN_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        HealthRoutes.install(into: &router, ReadinessSources(
            server: { serverBox.withLock { $0 } },
            limiter: { limiterBox.withLock { $0 } },
            storeSilence: {
                let last = watcher.lastSuccess.withLock { $0 }
                return last == 0 ? nil : Double(monotonicNanos() - last) / 1e9
            },
            cachedKeys: { keys.count },
            redisHealth: {
                guard !redisLinks.isEmpty else { return "off" }
                if redisLinks.allSatisfy({ $0.health == .ready }) { return "ready" }
                return redisLinks.contains { $0.health == .down } ? "down" : "degraded"
            },
            adminKeyHash: adminKey.map(Crypto.sha256Hex)))
        // Admin API (only with an admin key), and instant invalidation of cached keys through Redis.
        var subscriber: RedisSubscriber?
        if let adminKey {
            let service = AdminService(store: store, box: opened.box, actor: AuditActor("admin-api"))
            let announcer = redisLinks.first
            AdminAPI(service: service, adminKeyHash: Array(Crypto.sha256Hex(adminKey).utf8), announce: {
                keys.invalidateAll()
                if let announcer { Task { _ = try? await announcer.publish(KeyInvalidation.channel, nodeID) } }
            }).install(into: &router)
        }
        if let first = redisLinks.first {
            let s = RedisSubscriber(configuration: first.configuration, loop: group.loops[0])
            s.subscribe([KeyInvalidation.channel]) { _, _ in keys.invalidateAll() }
            s.start()
            subscriber = s
        }
        router.add(.GET, "/metrics") { _, response in
            response.respond(status: 200, headers: ["content-type": "text/plain; version=0.0.4; charset=utf-8"], body: Array(metrics.render().utf8))
        }
        router.addPrefix(nil, "/v1/", onLoop: proxy)
        let server = HTTPServer(group: group, configuration: config, handler: router)
        serverBox.withLock { $0 = server }
        do {
            try server.start()
        } catch {
            group.shutdown()
            await store.close()
            log.error("cannot listen", [("address", .string(config.listen.description)), ("error", .string("\(error)"))])
            return 1
        }
        log.info("listening", [("address", .string(config.listen.description)), ("port", .int(Int(server.port))),
                               ("event_loops", .int(loops)), ("version", .string(LLMProxyVersion.current))])

        let signo = await ServeSupport.waitForTermination(on: group.loops[0])
        log.info("draining", [("signal", .string(Signals.name(signo))), ("open_connections", .int(server.openConnections)),
                              ("grace_ms", .int(Int(grace / 1_000_000)))])
        server.beginDraining()
        let drainDelay = try p.duration("drain-delay")!
        if drainDelay > 0 { try? await Task.sleep(for: .nanoseconds(Int64(drainDelay))) }
        await server.shutdown(graceNanos: grace)
        watcher.stop()
        await retention?.stop()
        heartbeat?.stop()
        subscriber?.stop()
        for c in redisConnections { c.stop() }
        await usage.shutdown(deadlineNanos: 10_000_000_000)
        group.shutdown()
        await store.close()
        log.info("stopped")
        return 0
    }
}

/// Helpers shared by everything that serves until told to stop.
public enum ServeSupport {
    /// Suspends until SIGTERM, SIGINT or SIGHUP arrives.
    public static func waitForTermination(on loop: EventLoop) async -> Int32 {
        await withCheckedContinuation { (c: CheckedContinuation<Int32, Never>) in
            loop.execute {
                var resumed = false
                var watcher: SignalWatcher?
                do {
                    watcher = try SignalWatcher(loop: loop) { signo in
                        guard !resumed else { return }
                        resumed = true
                        watcher?.close()
                        watcher = nil
                        c.resume(returning: signo)
                    }
                } catch {
                    fatalError("cannot watch signals: \(error)")
                }
            }
        }
    }
}

func defaultNodeID() -> String {
    var name = [UInt8](repeating: 0, count: 256)
    gethostname(&name, 255)
    return String(decoding: name.prefix { $0 != 0 }, as: UTF8.self) + "-" + String(getpid())
}
