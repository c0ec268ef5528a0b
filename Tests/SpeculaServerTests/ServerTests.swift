import Foundation
import Hummingbird
import HummingbirdTesting
import SpeculaEngine
import SpeculaModels
import SpeculaServer
import SpeculaTestSupport
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The server on a live loopback port (Hummingbird's test framework starts it; requests go through URLSession, as
/// a client's would): every route, the errors in OpenAI's shape, streaming, speculation per request, and outputs
/// equal to the library's. The small pinned model serves most tests; the pinned pair serves the draft-model ones.
@Suite("Server", .serialized)
struct ServerTests {
    static let small = TestModels.directory + "/smollm2-135m-instruct-q4_1.gguf"
    static let target = TestModels.directory + "/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
    static let draft = TestModels.directory + "/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"

    static let smallModel: LoadedModel? = try? LoadedModel(path: small)

    static func available(_ paths: String...) throws -> Bool {
        let missing = paths.filter { !FileManager.default.fileExists(atPath: $0) }
        if missing.isEmpty { return true }
        if TestModels.required { throw ServerTestError("missing pinned model \(missing[0])") }
        return false
    }

    /// Runs `body` against a server with `options` serving `models`; the argument is the base URL.
    static func withServer(
        _ models: ServedModels, options: ServerOptions = ServerOptions(),
        _ body: @Sendable @escaping (String) async throws -> Void
    ) async throws {
        let server = SpeculaHTTPServer(options: options, models: models)
        try await server.application().test(.live) { client in
            let port = try #require(client.port)
            try await body("http://127.0.0.1:\(port)")
        }
    }

    static func smallServed() throws -> ServedModels {
        guard let model = smallModel else { throw ServerTestError("cannot load \(small)") }
        return ServedModels(target: model, draft: nil)
    }

    // MARK: - Routes

    @Test func everyRouteAnswers() async throws {
        guard try Self.available(Self.small) else { return }
        try await Self.withServer(try Self.smallServed()) { base in
            let health = try await HTTP.get(base + "/health")
            #expect(health.status == 200)
            #expect(try health.json()["status"] as? String == "ok")

            let models = try await HTTP.get(base + "/v1/models").json()
            let data = try #require(models["data"] as? [[String: Any]])
            #expect(data.first?["id"] as? String == "smollm2-135m-instruct-q4_1")

            let props = try await HTTP.get(base + "/props").json()
            let speculative = try #require(props["speculative"] as? [String: Any])
            #expect(speculative["auto_runs"] as? String == "ngram-adaptive")
            let trained = Self.smallModel?.transformer.config.contextLength ?? 0
            #expect(props["n_ctx"] as? Int == min(trained, ServerOptions.defaultContext))

            let tokens =
                try await HTTP.post(base + "/tokenize", ["content": "Hello world", "add_special": false])
                .json()["tokens"] as? [Int]
            let ids = try #require(tokens)
            #expect(ids == Self.smallModel?.tokenizer.encode("Hello world", addSpecial: false))
            let text = try await HTTP.post(base + "/detokenize", ["tokens": ids]).json()["content"] as? String
            #expect(text == "Hello world")

            let yaml = try await HTTP.get(base + "/openapi.yaml")
            #expect(yaml.status == 200)
            #expect(yaml.text.hasPrefix("openapi: 3"))

            _ = try await HTTP.post(
                base + "/v1/completions", ["prompt": "One, two,", "max_tokens": 4, "temperature": 0])
            let metrics = try await HTTP.get(base + "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.text.contains("specula:requests_total{route=\"/v1/completions\",code=\"200\"} 1"))
            #expect(metrics.text.contains("specula:generation_tokens_total 4"))
            #expect(metrics.text.contains("specula:time_to_first_token_seconds_count 1"))
        }
    }

    @Test func whileLoadingHealthIs503AndNothingWaits() async throws {
        // A server whose models have not loaded yet: health and every model route answer at once with 503.
        let server = SpeculaHTTPServer(options: ServerOptions())
        try await server.application().test(.live) { client in
            let base = "http://127.0.0.1:\(try #require(client.port))"
            let health = try await HTTP.get(base + "/health")
            #expect(health.status == 503)
            #expect(health.headers["retry-after"] == "1")
            #expect((try health.json()["error"] as? [String: Any])?["code"] as? String == "loading")
            #expect(try await HTTP.post(base + "/v1/completions", ["prompt": "x"]).status == 503)
            #expect(try await HTTP.get(base + "/metrics").status == 200)
        }
    }

    @Test func aDraftOfAnotherVocabularyIsReportedAndNotUsed() async throws {
        guard try Self.available(Self.small, Self.draft), let small = Self.smallModel else { return }
        let served = ServedModels(target: try LoadedModel(path: Self.draft), draft: small)
        #expect(served.usableDraft == nil)
        #expect(served.draftProblem != nil)
        try await Self.withServer(served) { base in
            let speculative = try #require(try await HTTP.get(base + "/props").json()["speculative"] as? [String: Any])
            #expect(speculative["auto_runs"] as? String == "ngram-adaptive")
            #expect((speculative["draft_problem"] as? String)?.isEmpty == false)
            let refused = try await HTTP.post(
                base + "/v1/completions", ["prompt": "def f():", "max_tokens": 2, "speculative": ["mode": "draft"]])
            #expect(refused.status == 400)
        }
    }

    // MARK: - Generation

    /// The library's greedy output for a chat turn (plain decoding).
    static func libraryText(
        _ target: LoadedModel, _ draft: LoadedModel?, method: String, messages: [ChatMessage], maxTokens: Int
    ) throws -> String {
        let plan = try DecodingPlan(
            method: method, base: DecodingPlan(sampling: .greedy, stop: StopConditions(maxTokens: maxTokens)))
        let session = try GenerationSession(target: target, draft: draft, plan: plan)
        try session.start(messages: messages)
        return try session.run()
    }

    @Test func greedyChatEqualsTheLibraryWithSpeculationOnAndOff() async throws {
        guard try Self.available(Self.small), let model = Self.smallModel else { return }
        let question = "List three colours."
        let expected = try Self.libraryText(
            model, nil, method: "plain", messages: [ChatMessage(role: "user", content: question)], maxTokens: 24)
        try await Self.withServer(try Self.smallServed()) { base in
            for speculative in [
                ["mode": "off"], ["mode": "auto"], ["mode": "ngram", "n_max": 4], ["n_max": 0], ["mode": "suffix"],
                ["mode": "suffix", "n_max": 4],
            ] {
                let body: [String: Any] = [
                    "messages": [["role": "user", "content": question]], "max_tokens": 24, "temperature": 0,
                    "speculative": speculative,
                ]
                let response = try await HTTP.post(base + "/v1/chat/completions", body).json()
                let choice = try #require((response["choices"] as? [[String: Any]])?.first)
                let message = try #require(choice["message"] as? [String: Any])
                #expect(message["content"] as? String == expected, "\(speculative)")
                let report = try #require(response["specula"] as? [String: Any])
                let usage = try #require(response["usage"] as? [String: Any])
                let off = speculative["mode"] as? String == "off" || speculative["n_max"] as? Int == 0
                // No draft model here: speculation is the n-gram or the suffix drafter.
                let drafter = speculative["mode"] as? String == "suffix" ? "suffix" : "ngram"
                #expect(report["drafter"] as? String == (off ? "none" : drafter), "\(speculative)")
                let timings = try #require(response["timings"] as? [String: Any])
                #expect(timings["predicted_n"] as? Int == usage["completion_tokens"] as? Int)
            }
        }
    }

    @Test func draftModelSpeculationKeepsTheGreedyOutput() async throws {
        guard try Self.available(Self.target, Self.draft) else { return }
        let target = try LoadedModel(path: Self.target)
        let draft = try LoadedModel(path: Self.draft)
        let messages = [ChatMessage(role: "user", content: "Write a Python function that reverses a string.")]
        let expected = try Self.libraryText(target, nil, method: "plain", messages: messages, maxTokens: 40)
        try await Self.withServer(ServedModels(target: target, draft: draft)) { base in
            let kinds: [[String: Any]] = [
                [:], ["mode": "draft", "n_max": 5], ["mode": "draft", "tree": "binary:3", "verifier": "spechub"],
                ["mode": "draft", "n_max": 4, "verifier": "block"], ["mode": "off"],
            ]
            for speculative in kinds {
                let response = try await HTTP.post(
                    base + "/v1/chat/completions",
                    [
                        "messages": [["role": "user", "content": messages[0].content]], "max_tokens": 40,
                        "temperature": 0, "speculative": speculative,
                    ]
                ).json()
                let choice = try #require((response["choices"] as? [[String: Any]])?.first)
                #expect((choice["message"] as? [String: Any])?["content"] as? String == expected, "\(speculative)")
                let report = try #require(response["specula"] as? [String: Any])
                if speculative["mode"] as? String != "off" {
                    #expect(report["drafter"] as? String == "model", "\(speculative)")
                }
            }
            // The same conversation again: its prompt's rows come from the kept cache.
            let again = try await HTTP.post(
                base + "/v1/chat/completions",
                ["messages": [["role": "user", "content": messages[0].content]], "max_tokens": 8, "temperature": 0]
            ).json()
            let details = (again["usage"] as? [String: Any])?["prompt_tokens_details"] as? [String: Any]
            #expect((details?["cached_tokens"] as? Int ?? 0) > 0)
        }
    }

    @Test func concurrentRequestsShareTheSlotsAndKeepTheirLoneOutputs() async throws {
        guard try Self.available(Self.small), let model = Self.smallModel else { return }
        let questions = [
            "Write a Python function that reverses a string.", "Name the planets of the solar system.",
            "Explain what a hash map is.", "Count from one to ten.",
        ]
        let modes: [[String: Any]] = [[:], ["mode": "off"], ["mode": "ngram", "n_max": 3], ["mode": "suffix"]]
        let bodies = try questions.indices.map { index in
            try JSONSerialization.data(withJSONObject: [
                "messages": [["role": "user", "content": questions[index]]], "max_tokens": 12, "temperature": 0,
                "speculative": modes[index],
            ])
        }
        let expected = try questions.map {
            try Self.libraryText(
                model, nil, method: "plain", messages: [ChatMessage(role: "user", content: $0)], maxTokens: 12)
        }
        var options = ServerOptions()
        options.parallel = 3
        try await Self.withServer(try Self.smallServed(), options: options) { base in
            let texts = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
                for index in bodies.indices {
                    let data = bodies[index]
                    group.addTask {
                        // Four generations share the cores: a slow host needs more than the usual two minutes.
                        let reply = try await HTTP.send(
                            url: base + "/v1/chat/completions", method: "POST", body: data, timeout: 900)
                        let choice = (try reply.json()["choices"] as? [[String: Any]])?.first
                        return (index, (choice?["message"] as? [String: Any])?["content"] as? String)
                    }
                }
                var texts = [String?](repeating: nil, count: bodies.count)
                for try await (index, text) in group { texts[index] = text }
                return texts
            }
            for index in questions.indices {
                #expect(texts[index] == expected[index], "request \(index): \(questions[index])")
            }
            let metrics = try await HTTP.get(base + "/metrics").text
            let shared = metrics.split(separator: "\n").first { $0.hasPrefix("specula:batch_shared_passes_total ") }
            #expect((shared.flatMap { Int($0.split(separator: " ")[1]) } ?? 0) > 0, "no pass served two requests")
            let props = try await HTTP.get(base + "/props").json()
            #expect(props["total_slots"] as? Int == 3)
        }
    }

    @Test func streamingSendsTheSameTextInChunks() async throws {
        guard try Self.available(Self.small) else { return }
        try await Self.withServer(try Self.smallServed()) { base in
            let request: [String: Any] = [
                "messages": [["role": "user", "content": "Count from one to ten."]], "max_tokens": 30,
                "temperature": 0,
            ]
            let whole = try await HTTP.post(base + "/v1/chat/completions", request).json()
            let choice = (whole["choices"] as? [[String: Any]])?.first
            let text = (choice?["message"] as? [String: Any])?["content"]
            // Whether the answer ends before 30 tokens depends on the kernels' rounding; the stream must say what
            // the whole response said.
            let finish = try #require(choice?["finish_reason"] as? String)
            let completionTokens = try #require((whole["usage"] as? [String: Any])?["completion_tokens"] as? Int)
            #expect(finish == "stop" || completionTokens == 30)
            var streaming = request
            streaming["stream"] = true
            streaming["stream_options"] = ["include_usage": true]
            let response = try await HTTP.post(base + "/v1/chat/completions", streaming)
            #expect(response.headers["content-type"]?.hasPrefix("text/event-stream") == true)
            let events = response.text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            #expect(events.last == "data: [DONE]")
            let chunks = try events.dropLast().map { event -> [String: Any] in
                #expect(event.hasPrefix("data: "))
                let object = try JSONSerialization.jsonObject(with: Data(event.dropFirst(6).utf8))
                return try #require(object as? [String: Any])
            }
            let deltas = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any] }
            #expect(deltas.first?["role"] as? String == "assistant")
            #expect(deltas.compactMap { $0["content"] as? String }.joined() == text as? String)
            let finishes = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String }
            #expect(finishes == [finish])
            let usage = try #require(chunks.last?["usage"] as? [String: Any])
            #expect(usage["completion_tokens"] as? Int == completionTokens)
            #expect((chunks.last?["choices"] as? [Any])?.isEmpty == true)
            #expect(chunks.contains { $0["specula"] != nil })
        }
    }

    @Test func stopSequencesAndLogprobs() async throws {
        guard try Self.available(Self.small) else { return }
        try await Self.withServer(try Self.smallServed()) { base in
            let plain = try await HTTP.post(
                base + "/v1/completions", ["prompt": "1, 2, 3, 4,", "max_tokens": 12, "temperature": 0]
            ).json()
            let full = try #require((plain["choices"] as? [[String: Any]])?.first?["text"] as? String)
            let stop = try #require(full.split(separator: ",").dropFirst().first.map { String($0) + "," })
            let cut = try await HTTP.post(
                base + "/v1/completions",
                ["prompt": "1, 2, 3, 4,", "max_tokens": 12, "temperature": 0, "stop": [stop], "logprobs": 2]
            ).json()
            let choice = try #require((cut["choices"] as? [[String: Any]])?.first)
            let text = try #require(choice["text"] as? String)
            #expect(!text.contains(stop))
            #expect(full.hasPrefix(text))
            #expect(choice["finish_reason"] as? String == "stop")
            let logprobs = try #require(choice["logprobs"] as? [String: Any])
            let values = try #require(logprobs["token_logprobs"] as? [Double])
            #expect(!values.isEmpty && values.allSatisfy { $0 <= 0 })
            let tops = try #require(logprobs["top_logprobs"] as? [[String: Double]])
            #expect(tops.allSatisfy { $0.count >= 1 && $0.count <= 2 })
        }
    }

    @Test func theTimeoutEndsALongGeneration() async throws {
        guard try Self.available(Self.small) else { return }
        var options = ServerOptions()
        options.timeout = 0.3
        try await Self.withServer(try Self.smallServed(), options: options) { base in
            let reply = try await HTTP.post(
                base + "/v1/chat/completions",
                [
                    "messages": [["role": "user", "content": "Count from 1 to 1000, one number per line."]],
                    "max_tokens": 1500, "temperature": 0, "speculative": ["mode": "off"],
                ]
            ).json()
            let choice = try #require((reply["choices"] as? [[String: Any]])?.first)
            #expect(choice["finish_reason"] as? String == "length")
            #expect((reply["specula"] as? [String: Any])?["timed_out"] as? Bool == true)
            let tokens = try #require((reply["usage"] as? [String: Any])?["completion_tokens"] as? Int)
            #expect(tokens > 0 && tokens < 1500)
        }
    }

    // MARK: - Errors

    @Test func badRequestsAreOpenAIErrorsNamingTheField() async throws {
        guard try Self.available(Self.small) else { return }
        var options = ServerOptions()
        options.maxBodyBytes = 4096
        options.context = 64
        try await Self.withServer(try Self.smallServed(), options: options) { base in
            let chat = base + "/v1/chat/completions"
            let user: [[String: Any]] = [["role": "user", "content": "hi"]]
            let cases: [(String, Any, Int, String?, String?)] = [
                (chat, ["messages": user, "temperature": "hot"], 400, "temperature", nil),
                (chat, ["messages": user, "temperature": 3], 400, "temperature", nil),
                (chat, ["messages": user, "n": 2], 400, "n", nil),
                (chat, ["messages": user, "max_tokens": 0], 400, "max_tokens", nil),
                (chat, ["messages": [] as [Any]], 400, "messages", nil),
                (chat, ["messages": [["role": "wizard", "content": "x"]]], 400, "messages[0].role", nil),
                (chat, ["messages": user, "stop": [1]], 400, "stop", nil),
                (chat, ["messages": user, "speculative": ["mode": "fast"]], 400, "speculative.mode", nil),
                (chat, ["messages": user, "speculative": ["mode": "draft"]], 400, "speculative.mode", nil),
                (
                    chat, ["messages": user, "speculative": ["mode": "suffix", "tree": "binary:2"]], 400,
                    "speculative.tree", nil
                ),
                (chat, ["messages": user, "speculative": ["verifier": "magic"]], 400, "speculative.verifier", nil),
                (chat, ["messages": user, "speculative": ["n_max": 99]], 400, "speculative.n_max", nil),
                (chat, ["messages": user, "max_tokens": 1000], 400, "messages", "context_length_exceeded"),
                (chat, ["prompt": "x"], 400, "prompt", nil),
                (base + "/v1/completions", ["prompt": ["a", "b"]], 400, "prompt", nil),
                (base + "/v1/completions", ["prompt": [999_999_999]], 400, "prompt", nil),
                (base + "/v1/completions", ["prompt": "x", "logprobs": 50], 400, "logprobs", nil),
            ]
            for (url, body, status, param, code) in cases {
                let response = try await HTTP.post(url, body)
                #expect(response.status == status, "\(body)")
                let error = try #require(try response.json()["error"] as? [String: Any], "\(body)")
                #expect(error["param"] as? String == param, "\(body): \(error)")
                #expect(error["type"] as? String == "invalid_request_error")
                if let code { #expect(error["code"] as? String == code) }
                #expect((error["message"] as? String)?.isEmpty == false)
            }
            let malformed = try await HTTP.send(url: chat, method: "POST", body: Data("{\"messages\": [".utf8))
            #expect(malformed.status == 400)
            #expect((try malformed.json()["error"] as? [String: Any])?["code"] as? String == "invalid_json")
            let long = String(repeating: "x", count: 8000)
            let large = try await HTTP.post(chat, ["messages": [["role": "user", "content": long]]])
            #expect(large.status == 413)
            #expect(try large.json()["error"] != nil)
            let missing = try await HTTP.get(base + "/v1/nothing")
            #expect(missing.status == 404)
            #expect(try missing.json()["error"] != nil)
            // Still healthy after all of it.
            #expect(try await HTTP.get(base + "/health").status == 200)
        }
    }

    /// A tree spelling that names a file (as `--tree FILE` may on the command line) is refused without opening it:
    /// `/dev/zero` would otherwise be read until memory runs out, and a client must not read the host's files.
    @Test func aRequestCannotMakeTheServerReadAFile() throws {
        guard try Self.available(Self.small), let model = Self.smallModel else { return }
        let tree = FileManager.default.temporaryDirectory.appendingPathComponent("specula-request-tree.json").path
        try Data("[[0],[1],[0,0]]".utf8).write(to: URL(fileURLWithPath: tree))
        defer { try? FileManager.default.removeItem(atPath: tree) }
        for spelling in ["/dev/zero", tree, "/etc/passwd"] {
            let body = try JSONSerialization.data(withJSONObject: [
                "messages": [["role": "user", "content": "hi"]],
                "speculative": ["mode": "draft", "tree": spelling],
            ])
            #expect("\(spelling)") {
                _ = try PreparedGeneration.check(chat: true, body: body, target: model, hasDraft: true, context: 64)
            } throws: { error in
                guard let error = error as? APIError else { return false }
                return error.param == "speculative.tree" && !error.message.contains("JSON file")
            }
        }
        // A Sequoia budget past the request bound is refused before it is planned (planning is quadratic in the
        // budget: sequoia:630 took 4 s in the fuzz build), and so is a spelled tree past it.
        for spelling in ["sequoia:4096", "nary:4:4"] {
            let body = try JSONSerialization.data(withJSONObject: [
                "messages": [["role": "user", "content": "hi"]],
                "speculative": ["mode": "draft", "tree": spelling, "verifier": "rrsw"],
            ])
            #expect {
                _ = try PreparedGeneration.check(chat: true, body: body, target: model, hasDraft: true, context: 64)
            } throws: { error in
                // The budget is refused as a budget (before planning), the spelled tree by its node count.
                let reason = spelling.hasPrefix("sequoia") ? "Sequoia budget of at most 256" : "at most 256 here"
                return (error as? APIError)?.param == "speculative.tree" && "\(error)".contains(reason)
            }
        }
        // The same body with a spelled tree is accepted: the refusal is of the file, not of trees.
        let body = try JSONSerialization.data(withJSONObject: [
            "messages": [["role": "user", "content": "hi"]],
            "speculative": ["mode": "draft", "tree": "nary:2:2", "verifier": "rrsw"],
        ])
        let (prompt, plan) = try PreparedGeneration.check(
            chat: true, body: body, target: model, hasDraft: true, context: 64)
        #expect(!prompt.isEmpty && plan.shape.nodeCount == 7)
    }

    @Test func anAPIKeyGuardsEveryRouteButHealth() async throws {
        guard try Self.available(Self.small) else { return }
        var options = ServerOptions()
        options.apiKey = "secret-key"
        try await Self.withServer(try Self.smallServed(), options: options) { base in
            #expect(try await HTTP.get(base + "/health").status == 200)
            let none = try await HTTP.get(base + "/v1/models")
            #expect(none.status == 401)
            #expect((try none.json()["error"] as? [String: Any])?["code"] as? String == "invalid_api_key")
            #expect(try await HTTP.get(base + "/v1/models", key: "wrong").status == 401)
            #expect(try await HTTP.get(base + "/v1/models", key: "secret-key").status == 200)
        }
    }

    @Test func aFullQueueIsA503WithRetryAfter() async throws {
        guard try Self.available(Self.small) else { return }
        var options = ServerOptions()
        options.queueLimit = 0
        options.parallel = 1
        try await Self.withServer(try Self.smallServed(), options: options) { base in
            let long = Task {
                try await HTTP.post(
                    base + "/v1/completions",
                    ["prompt": "Once upon a time", "max_tokens": 400, "temperature": 0, "speculative": ["mode": "off"]])
            }
            // Wait (bounded) until the long one runs.
            var running = false
            for _ in 0..<200 where !running {
                running = try await HTTP.get(base + "/metrics").text.contains("specula:num_requests_running 1")
                if !running { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(running)
            let refused = try await HTTP.post(base + "/v1/completions", ["prompt": "x", "max_tokens": 2])
            #expect(refused.status == 503)
            #expect(refused.headers["retry-after"] == "1")
            #expect((try refused.json()["error"] as? [String: Any])?["code"] as? String == "queue_full")
            #expect(try await long.value.status == 200)
            #expect(try await HTTP.post(base + "/v1/completions", ["prompt": "x", "max_tokens": 2]).status == 200)
        }
    }
}

struct ServerTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A small HTTP client over URLSession (a new connection when the server closes one).
enum HTTP {
    struct Reply: Sendable {
        var status: Int
        var headers: [String: String]
        var data: Data
        var text: String { String(decoding: data, as: UTF8.self) }
        func json() throws -> [String: Any] {
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ServerTestError("not a JSON object: \(text)")
            }
            return object
        }
    }

    /// `timeout`: long, because these tests share the cores with every other suite of the run, and on a host
    /// without the AVX-512 kernels a request can wait minutes for its passes; what a timeout means is tested with
    /// the server's own (`options.timeout`).
    static func send(
        url: String, method: String, body: Data? = nil, key: String? = nil, timeout: Double = 900
    ) async throws -> Reply {
        guard let address = URL(string: url) else { throw ServerTestError("bad URL \(url)") }
        var request = URLRequest(url: address)
        request.httpMethod = method
        request.httpBody = body
        request.timeoutInterval = timeout
        if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
        if let key { request.setValue("Bearer \(key)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw ServerTestError("not an HTTP response") }
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { headers[name.lowercased()] = value }
        }
        return Reply(status: http.statusCode, headers: headers, data: data)
    }

    static func get(_ url: String, key: String? = nil) async throws -> Reply {
        try await send(url: url, method: "GET", key: key)
    }

    static func post(_ url: String, _ body: Any) async throws -> Reply {
        try await send(url: url, method: "POST", body: try JSONSerialization.data(withJSONObject: body))
    }
}
