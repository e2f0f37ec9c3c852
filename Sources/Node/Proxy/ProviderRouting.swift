import Storage

/// How a client request maps onto a connection's provider: URL and credentials.
enum ProviderRouting {
    /// What follows the connection's endpoint upstream: client `/v1/<rest>?<query>` → `<endpoint>/<rest>?<query>`;
    /// Azure adds `deployments/<model>/` (for the APIs addressed through a deployment) and its `api-version`.
    /// A slice of the client's path when nothing is added (no copy on the common path).
    static func upstreamSuffix(_ c: ConnectionRecord, rest: Substring, query: Substring?, model: String?) throws(ProxyError) -> Substring {
        switch c.provider {
        case .openai, .anthropic:
            guard let query else { return rest }
            return Substring(rest + "?" + query)
        case .azure:
            var path = ""
            if azureDeploymentPaths.contains(rest) {
                guard let model, !model.isEmpty else {
                    throw ProxyError(status: 400, type: "invalid_request_error", code: "model_required",
                                     message: "Azure connections need \"model\" (the deployment name) in the request body")
                }
                path = "/deployments/" + percentEncodePathSegment(model)
            }
            path += rest
            var params: [String] = query.map { [String($0)] } ?? []
            if let v = c.options["api-version"], !(query?.contains("api-version=") ?? false) { params.append("api-version=" + v) }
            return Substring(path + (params.isEmpty ? "" : "?" + params.joined(separator: "&")))
        }
    }

    /// The APIs whose answer is generated text: its size is the completion's estimate when a provider
    /// reports no usage. Listings, files, audio and images are not estimated from their bytes.
    static func generatesText(path: Substring) -> Bool {
        path == "/v1/chat/completions" || path == "/v1/completions" || path == "/v1/responses" || path == "/v1/messages"
            || path == "/v1/complete"
    }

    /// The Azure APIs addressed through a deployment (`/deployments/<model>/chat/completions`). The others —
    /// responses, files, batches, models, … — are the resource's own (`/openai/responses`), the deployment,
    /// where one is needed, named by `model` in the body; a path that names its deployment already
    /// (`/deployments/…`) is passed as it is.
    static let azureDeploymentPaths: Set<Substring> = ["/chat/completions", "/completions", "/embeddings", "/audio/transcriptions",
                                                       "/audio/translations", "/audio/speech", "/images/generations", "/images/edits"]

    /// Whether a streamed request to `path` can be asked for its usage with `stream_options.include_usage`:
    /// only the chat and legacy completions APIs define it. The Responses API (`/v1/responses`) ends every
    /// stream with the usage in `response.completed` and has no such option, and a parameter an API does
    /// not define is a 400 from OpenAI. Azure knows it from api-version 2024-09-01-preview (GA 2024-10-21);
    /// earlier versions refuse the request ("Unrecognized request argument supplied: stream_options"), so
    /// their streams go as sent and their usage is estimated.
    static func streamUsageIsOptIn(path: Substring, connection c: ConnectionRecord, query: Substring?) -> Bool {
        guard path == "/v1/chat/completions" || path == "/v1/completions" else { return false }
        switch c.provider {
        case .anthropic: return false
        case .openai: return true
        case .azure: return azureKnowsStreamOptions(apiVersion: apiVersion(query: query) ?? c.options["api-version"].map { Substring($0) })
        }
    }

    /// Azure api-versions are dates (`2024-10-21`, `2024-09-01-preview`), or `preview`/`latest` on the
    /// newer v1 API; none at all is the v1 API too. An unknown shape is not asked: a stream without usage
    /// is counted by estimate, a refused one is lost.
    static func azureKnowsStreamOptions(apiVersion v: Substring?) -> Bool {
        guard let v, !v.isEmpty else { return true }
        if v == "preview" || v == "latest" { return true }
        let date = v.prefix(10)
        guard date.count == 10, date.utf8.enumerated().allSatisfy({ i, b in (i == 4 || i == 7) ? b == 0x2D : (b >= 0x30 && b <= 0x39) }) else {
            return false
        }
        return date >= "2024-09-01"
    }

    /// The `api-version` a request's query carries, if any.
    static func apiVersion(query: Substring?) -> Substring? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") where pair.hasPrefix("api-version=") {
            return pair.dropFirst("api-version=".count)
        }
        return nil
    }

    /// The provider's own authentication header.
    static func authHeader(_ c: ConnectionRecord, secret: String) -> (String, String) {
        switch c.provider {
        case .openai: ("authorization", "Bearer " + secret)
        case .anthropic: ("x-api-key", secret)
        case .azure: ("api-key", secret)
        }
    }

    static func percentEncodePathSegment(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x2E || b == 0x5F || b == 0x7E {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                let hex = String(b, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }

    /// Request headers that must not travel to the provider: hop-by-hop, framing, the client's key.
    static let droppedRequestHeaders = LiteralTable([
        "connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
        "host", "content-length", "expect", "authorization", "x-api-key", "api-key", "accept-encoding",
        // They scope the client's own OpenAI key; beside the connection's key they are a 401
        // (`mismatched_organization`) whenever a client still sets OPENAI_ORG_ID or OPENAI_PROJECT_ID.
        "openai-organization", "openai-project",
    ])

    /// Response headers the proxy sets itself or that describe the upstream hop only.
    static let droppedResponseHeaders = LiteralTable([
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "date",
    ])
}

/// An error the proxy answers itself, in the API's own shape.
struct ProxyError: Error {
    var status: Int
    var type: String
    var code: String?
    var message: String

    func body(anthropic: Bool) -> [UInt8] {
        if anthropic {
            let t: String = switch status {
            case 401: "authentication_error"
            case 403: "permission_error"
            case 404: "not_found_error"
            case 429: "rate_limit_error"
            case 502, 503: "api_error"
            case 504: "timeout_error"
            default: status >= 500 ? "api_error" : "invalid_request_error"
            }
            return APIErrorBody.anthropic(message: message, type: t)
        }
        return APIErrorBody.openAI(message: message, type: type, code: code)
    }
}
