/// The hand-written OpenAPI document of the server's API, served at `GET /openapi.yaml` (docs/server.md describes
/// the same routes in prose). The loaded model's vocabulary and context bound token ids and token counts. Optional
/// fields are nullable: a null is read as an absent field, as OpenAI's API does.
enum OpenAPIDocument {
    static func yaml(vocabulary: Int, context: Int) -> String {
        template.replacingOccurrences(of: "VOCABULARY_MAX", with: "\(vocabulary - 1)")
            .replacingOccurrences(of: "CONTEXT_MAX", with: "\(context)")
    }

    static let template = """
        openapi: 3.0.3
        info:
          title: Specula
          version: 0.1.0
          description: >-
            OpenAI-compatible text generation with exact speculative decoding. Every generation response carries a
            `specula` object (what ran, tokens per target pass, acceptance, mean optimal acceptance α*, efficiency,
            the time split) and llama-server's `timings`.
        paths:
          /v1/chat/completions:
            post:
              summary: A chat turn rendered by the model's chat template.
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: '#/components/schemas/ChatRequest'}
              responses:
                '200':
                  description: The completion (JSON), or server-sent events when `stream` is true.
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/ChatResponse'}
                    text/event-stream:
                      schema: {$ref: '#/components/schemas/Event'}
                '400': {$ref: '#/components/responses/Error'}
                '401': {$ref: '#/components/responses/Error'}
                '413': {$ref: '#/components/responses/Error'}
                '503': {$ref: '#/components/responses/Error'}
          /v1/completions:
            post:
              summary: A completion of raw text (special-token text is read as such).
              requestBody:
                required: true
                content:
                  application/json:
                    schema: {$ref: '#/components/schemas/CompletionRequest'}
              responses:
                '200':
                  description: The completion (JSON), or server-sent events when `stream` is true.
                  content:
                    application/json:
                      schema: {$ref: '#/components/schemas/CompletionResponse'}
                    text/event-stream:
                      schema: {$ref: '#/components/schemas/Event'}
                '400': {$ref: '#/components/responses/Error'}
                '401': {$ref: '#/components/responses/Error'}
                '413': {$ref: '#/components/responses/Error'}
                '503': {$ref: '#/components/responses/Error'}
          /v1/specula/audit:
            post:
              summary: >-
                The request's prompt decoded with speculation off and on. At temperature 0 the token sequences must
                be identical (else the first divergence and the logit margin there); at T > 0 `samples` samples of
                the first `max_tokens` (≤ 8) tokens each way are compared by a chi-square test.
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      allOf:
                        - {$ref: '#/components/schemas/Sampling'}
                        - type: object
                          properties:
                            prompt: {type: string, minLength: 1, nullable: true}
                            messages:
                              type: array
                              minItems: 1
                              items: {$ref: '#/components/schemas/Message'}
                              nullable: true
                            samples: {type: integer, minimum: 10, maximum: 5000, nullable: true}
              responses:
                '200':
                  description: The audit.
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [temperature, method, seconds]
                        properties:
                          temperature: {type: number}
                          method: {type: string}
                          identical: {type: boolean}
                          tokens: {type: integer}
                          plain_text: {type: string}
                          speculative_text: {type: string}
                          first_divergence: {type: object}
                          samples: {type: integer, nullable: true}
                          sequence_tokens: {type: integer}
                          distinct_sequences: {type: integer}
                          chi_square: {type: number}
                          degrees_of_freedom: {type: integer}
                          p_value: {type: number}
                          total_variation: {type: number}
                          passed: {type: boolean}
                          alpha: {type: number}
                          tokens_per_pass: {type: number}
                          acceptance: {type: number}
                          seconds: {type: number}
                '400': {$ref: '#/components/responses/Error'}
                '401': {$ref: '#/components/responses/Error'}
                '413': {$ref: '#/components/responses/Error'}
                '503': {$ref: '#/components/responses/Error'}
          /v1/models:
            get:
              summary: The served model.
              responses:
                '200':
                  description: A list with one model.
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [object, data]
                        properties:
                          object: {type: string, enum: [list]}
                          data:
                            type: array
                            items:
                              type: object
                              required: [id, object, created, owned_by]
                              properties:
                                id: {type: string}
                                object: {type: string, enum: [model]}
                                created: {type: integer}
                                owned_by: {type: string}
                                meta: {type: object}
                '401': {$ref: '#/components/responses/Error'}
                '503': {$ref: '#/components/responses/Error'}
          /health:
            get:
              summary: 200 once the model is loaded, 503 before. Never waits for a generation.
              responses:
                '200':
                  description: Ready.
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [status]
                        properties:
                          status: {type: string}
                '503': {$ref: '#/components/responses/Error'}
          /metrics:
            get:
              summary: Prometheus text exposition (requests, tokens, queue, latency histograms, speculation).
              responses:
                '200':
                  description: Metrics.
                  content:
                    text/plain:
                      schema: {type: string}
                '401': {$ref: '#/components/responses/Error'}
          /props:
            get:
              summary: The defaults a request gets, speculation included.
              responses:
                '200':
                  description: Properties.
                  content:
                    application/json:
                      schema: {type: object}
                '401': {$ref: '#/components/responses/Error'}
                '503': {$ref: '#/components/responses/Error'}
          /tokenize:
            post:
              summary: Token ids of a text.
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      required: [content]
                      properties:
                        content: {type: string}
                        add_special: {type: boolean, nullable: true}
                        parse_special: {type: boolean, nullable: true}
              responses:
                '200':
                  description: The tokens.
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [tokens]
                        properties:
                          tokens: {type: array, items: {type: integer}}
                '400': {$ref: '#/components/responses/Error'}
                '401': {$ref: '#/components/responses/Error'}
                '413': {$ref: '#/components/responses/Error'}
                '503': {$ref: '#/components/responses/Error'}
          /detokenize:
            post:
              summary: The text of token ids.
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      required: [tokens]
                      properties:
                        tokens: {type: array, items: {type: integer, minimum: 0, maximum: VOCABULARY_MAX}}
              responses:
                '200':
                  description: The text.
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [content]
                        properties:
                          content: {type: string}
                '400': {$ref: '#/components/responses/Error'}
                '401': {$ref: '#/components/responses/Error'}
                '413': {$ref: '#/components/responses/Error'}
                '503': {$ref: '#/components/responses/Error'}
          /openapi.yaml:
            get:
              summary: This document.
              responses:
                '200':
                  description: OpenAPI 3.0 YAML.
                  content:
                    application/yaml:
                      schema: {type: string}
        components:
          responses:
            Error:
              description: An error in OpenAI's shape.
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/Error'}
          schemas:
            Event:
              type: object
              description: >-
                One server-sent event: `data` is a JSON chunk (the response's shape with `delta` or `text`, the last
                one with `finish_reason`, `timings` and `specula`; then `usage` when asked for) or `[DONE]`.
              required: [data]
              properties:
                data: {type: string}
                event: {type: string}
            Error:
              type: object
              required: [error]
              properties:
                error:
                  type: object
                  required: [message, type, param, code]
                  properties:
                    message: {type: string}
                    type: {type: string}
                    param: {type: string, nullable: true}
                    code: {type: string, nullable: true}
            Speculative:
              type: object
              description: Per-request speculation (the CLI's spellings). n_max 0 switches it off.
              properties:
                mode: {type: string, enum: [auto, 'off', draft, ngram, suffix], nullable: true}
                verifier: {type: string, enum: [token, block, rrs, rrsw, kseq, spechub, greedy, auto], nullable: true}
                tree: {type: string, description: 'chain:N, binary:D, nary:K:D, drafts:K:D, eagle, sequoia:B', nullable: true}
                n_max: {type: integer, minimum: 0, maximum: 64, nullable: true}
            Sampling:
              type: object
              properties:
                model: {type: string, nullable: true}
                max_tokens: {type: integer, minimum: 1, maximum: CONTEXT_MAX, nullable: true}
                max_completion_tokens: {type: integer, minimum: 1, maximum: CONTEXT_MAX, nullable: true}
                temperature: {type: number, minimum: 0, maximum: 2, nullable: true}
                top_p: {type: number, minimum: 0, exclusiveMinimum: true, maximum: 1, nullable: true}
                top_k: {type: integer, minimum: -1, nullable: true}
                min_p: {type: number, minimum: 0, maximum: 1, nullable: true}
                presence_penalty: {type: number, minimum: -2, maximum: 2, nullable: true}
                frequency_penalty: {type: number, minimum: -2, maximum: 2, nullable: true}
                repeat_penalty: {type: number, minimum: 0, exclusiveMinimum: true, maximum: 10, nullable: true}
                seed: {type: integer, nullable: true}
                n: {type: integer, enum: [1], nullable: true}
                stop:
                  nullable: true
                  oneOf:
                    - {type: string, minLength: 1}
                    - {type: array, maxItems: 16, items: {type: string, minLength: 1}}
                stream: {type: boolean, nullable: true}
                stream_options:
                  type: object
                  nullable: true
                  properties:
                    include_usage: {type: boolean, nullable: true}
                speculative:
                  nullable: true
                  allOf: [{$ref: '#/components/schemas/Speculative'}]
            Message:
              type: object
              required: [role]
              properties:
                role: {type: string, enum: [system, developer, user, assistant, tool]}
                content:
                  nullable: true
                  oneOf:
                    - {type: string}
                    - type: array
                      items:
                        type: object
                        required: [type, text]
                        properties:
                          type: {type: string, enum: [text]}
                          text: {type: string}
            ChatRequest:
              allOf:
                - {$ref: '#/components/schemas/Sampling'}
                - type: object
                  required: [messages]
                  properties:
                    messages: {type: array, minItems: 1, items: {$ref: '#/components/schemas/Message'}}
                    logprobs: {type: boolean, nullable: true}
                    top_logprobs: {type: integer, minimum: 0, maximum: 20, nullable: true}
            CompletionRequest:
              allOf:
                - {$ref: '#/components/schemas/Sampling'}
                - type: object
                  required: [prompt]
                  properties:
                    prompt:
                      nullable: true
                      oneOf:
                        - {type: string, minLength: 1}
                        - {type: array, minItems: 1, items: {type: integer, minimum: 0, maximum: VOCABULARY_MAX}}
                        - {type: array, minItems: 1, maxItems: 1, items: {type: string, minLength: 1}}
                        - type: array
                          minItems: 1
                          maxItems: 1
                          items: {type: array, minItems: 1, items: {type: integer, minimum: 0, maximum: VOCABULARY_MAX}}
                    logprobs: {type: integer, minimum: 0, maximum: 20, nullable: true}
            Usage:
              type: object
              required: [prompt_tokens, completion_tokens, total_tokens]
              properties:
                prompt_tokens: {type: integer}
                completion_tokens: {type: integer}
                total_tokens: {type: integer}
                prompt_tokens_details:
                  type: object
                  properties:
                    cached_tokens: {type: integer}
            Specula:
              type: object
              required: [method, drafter, shape, verifier, rounds, tokens_per_pass]
              properties:
                method: {type: string}
                drafter: {type: string}
                shape: {type: string}
                verifier: {type: string}
                rounds: {type: integer}
                tokens_per_pass: {type: number}
                drafted_tokens: {type: integer}
                accepted_tokens: {type: integer}
                acceptance: {type: number, nullable: true}
                alpha_star: {type: number, nullable: true}
                efficiency: {type: number, nullable: true}
                reached_positions: {type: integer}
                round_kinds: {type: object, additionalProperties: {type: integer}}
                queued_seconds: {type: number}
                prompt_seconds: {type: number}
                first_token_seconds: {type: number}
                seconds: {type: number}
                draft_seconds: {type: number}
                target_pass_seconds: {type: number}
                verification_seconds: {type: number}
                cached_prompt_tokens: {type: integer}
                timed_out: {type: boolean}
            Timings:
              type: object
              properties:
                prompt_n: {type: integer}
                prompt_ms: {type: number}
                prompt_per_second: {type: number}
                predicted_n: {type: integer}
                predicted_ms: {type: number}
                predicted_per_token_ms: {type: number}
                predicted_per_second: {type: number}
                draft_n: {type: integer}
                draft_n_accepted: {type: integer}
            ChatResponse:
              type: object
              required: [id, object, created, model, choices, usage]
              properties:
                id: {type: string}
                object: {type: string, enum: [chat.completion]}
                created: {type: integer}
                model: {type: string}
                system_fingerprint: {type: string}
                choices:
                  type: array
                  items:
                    type: object
                    required: [index, message, finish_reason]
                    properties:
                      index: {type: integer}
                      message:
                        type: object
                        required: [role, content]
                        properties:
                          role: {type: string}
                          content: {type: string}
                      logprobs: {type: object, nullable: true}
                      finish_reason: {type: string, enum: [stop, length]}
                usage: {$ref: '#/components/schemas/Usage'}
                timings: {$ref: '#/components/schemas/Timings'}
                specula: {$ref: '#/components/schemas/Specula'}
            CompletionResponse:
              type: object
              required: [id, object, created, model, choices, usage]
              properties:
                id: {type: string}
                object: {type: string, enum: [text_completion]}
                created: {type: integer}
                model: {type: string}
                system_fingerprint: {type: string}
                choices:
                  type: array
                  items:
                    type: object
                    required: [index, text, finish_reason]
                    properties:
                      index: {type: integer}
                      text: {type: string}
                      logprobs: {type: object, nullable: true}
                      finish_reason: {type: string, enum: [stop, length]}
                usage: {$ref: '#/components/schemas/Usage'}
                timings: {$ref: '#/components/schemas/Timings'}
                specula: {$ref: '#/components/schemas/Specula'}
        """
}
