using System.Diagnostics;
using System.Threading.Channels;
using ChatServices.ServiceDefaults;
using Grpc.Core;
using ChatServices.InferenceService.Engine;
using ChatServices.InferenceService.Engine.Constraints;
using ChatServices.InferenceService.Engine.Sampling;
using ChatServices.Protos.Chat.V1;
using Microsoft.AspNetCore.Authorization;

namespace ChatServices.InferenceService.Api;

/// <summary>
/// <c>chat.v1.Inference</c> over gRPC: translates messages to engine requests and engine events back to messages.
/// The call's cancellation token (client cancel, disconnect, or deadline) is the request's, so the engine drops
/// the sequences at its next step. Parameter errors become INVALID_ARGUMENT naming the field; a full queue,
/// RESOURCE_EXHAUSTED; a model still loading, UNAVAILABLE. Callers need a role <see cref="CallerPolicy"/> admits.
/// </summary>
[Authorize(Policy = CallerPolicy)]
public sealed class InferenceApi(EngineHost host) : Inference.InferenceBase
{
    /// <summary>The authorization policy of the GPU tier (registered by <c>AddInferenceEngine</c>).</summary>
    public const string CallerPolicy = "inference";

    public const int MaxRequestIdLength = 128;

    private static readonly WriteOptions BufferedWrite = new(WriteFlags.BufferHint);

    public override async Task Generate(GenerateRequest request, IServerStreamWriter<GenerateResponse> responseStream, ServerCallContext context)
    {
        var engine = RequireEngine();
        ChannelReader<GenerationEvent> events;
        DateTimeOffset arrival;
        try
        {
            if (request.RequestId.Length > MaxRequestIdLength)
                throw new InvalidRequestException("request_id", $"must be at most {MaxRequestIdLength} characters.");
            events = engine.Submit(ToEngineRequest(request), context.CancellationToken);
            arrival = DateTimeOffset.UtcNow;
        }
        catch (InvalidRequestException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        catch (QueueFullException e)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, e.Message));
        }
        catch (EngineShutdownException e)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, e.Message));
        }

        try
        {
            await StreamAsync(request, events, arrival, responseStream, context.CancellationToken);
        }
        catch (EngineShutdownException e)
        {
            // The drain time passed: what was generated has been sent; the rest will not come.
            throw new RpcException(new Status(StatusCode.Unavailable, e.Message));
        }
    }

    private static async Task StreamAsync(GenerateRequest request, ChannelReader<GenerationEvent> events, DateTimeOffset arrival, IServerStreamWriter<GenerateResponse> responseStream, CancellationToken cancellationToken)
    {
        var withLogprobs = request.Logprobs || request.TopLogprobs > 0;
        await foreach (var e in events.ReadAllAsync(cancellationToken))
        {
            if (e is GenerationCompleted completed) RecordSpans(arrival, completed.Usage, request);
            // A step whose successor is already waiting is buffered, not flushed: the burst goes out in one write.
            // Nothing is held back: the last event available is always flushed.
            responseStream.WriteOptions = events.TryPeek(out _) ? BufferedWrite : null;
            await responseStream.WriteAsync(e switch
            {
                TokensGenerated step => new GenerateResponse { Step = ToStep(step, withLogprobs) },
                GenerationCompleted done => new GenerateResponse { Result = ToResult(done) },
                _ => throw new InvalidOperationException($"Unknown engine event {e.GetType().Name}."),
            });
        }
    }

    private static readonly ActivitySource Source = new(Telemetry.SourcePrefix + "Inference");

    /// <summary>
    /// The request's phases as child spans of its gRPC span: queueing (arrival to admission into the batch), prefill
    /// (to the first token) and decode (to the end). The engine runs every request on one thread, step by step, so
    /// the phases are recorded afterwards from its timestamps rather than as live spans.
    /// </summary>
    private static void RecordSpans(DateTimeOffset arrival, GenerationUsage usage, GenerateRequest request)
    {
        var parent = Activity.Current;
        if (parent is null || !Source.HasListeners()) return;
        var admitted = arrival.AddSeconds(usage.QueueSeconds);
        var firstToken = arrival.AddSeconds(usage.TimeToFirstTokenSeconds);
        var end = arrival.AddSeconds(usage.DurationSeconds);
        Phase("inference.queue", arrival, admitted);
        Phase("inference.prefill", admitted, firstToken,
            ("gen_ai.usage.input_tokens", usage.PromptTokens), ("chat.inference.cached_prompt_tokens", usage.CachedPromptTokens));
        Phase("inference.decode", firstToken, end,
            ("gen_ai.usage.output_tokens", usage.CompletionTokens), ("gen_ai.request.max_tokens", request.HasMaxNewTokens ? (int)request.MaxNewTokens : 0));

        void Phase(string name, DateTimeOffset start, DateTimeOffset stop, params (string Key, int Value)[] tags)
        {
            using var span = Source.StartActivity(name, ActivityKind.Internal, parent.Context, startTime: start);
            if (span is null) return;
            foreach (var (key, value) in tags) span.SetTag(key, value);
            span.SetEndTime(stop.UtcDateTime);
        }
    }

    public override Task<ModelInfo> GetModelInfo(GetModelInfoRequest request, ServerCallContext context)
    {
        var engine = RequireEngine();
        var model = engine.Model;
        var s = engine.Status;
        var info = new ModelInfo
        {
            ModelName = model.Name,
            ModelPath = Path.GetFullPath(model.Path),
            ContextLength = (uint)s.SlotCapacityTokens,
            VocabSize = (uint)model.VocabSize,
            ExecutionProvider = engine.ExecutionProvider,
            MaxSequencesPerRequest = (uint)engine.MaxWidth,
            Waiting = (uint)s.Waiting,
            Running = (uint)s.Running,
            KvCache = new KvCacheInfo
            {
                CapacityBytes = (ulong)s.KvBytesTotal,
                TotalSlots = (uint)s.SlotsTotal,
                SlotCapacityTokens = (uint)s.SlotCapacityTokens,
                UsedSlots = (uint)s.SlotsInUse,
                CachedSlots = (uint)s.SlotsCached,
                UsedTokens = (ulong)s.KvTokensUsed,
                Usage = s.KvUsage,
                Preemptions = (ulong)s.Preemptions,
                PrefixCacheHitRate = s.PrefixHitRate,
                BudgetBytes = (ulong)s.KvBudgetBytes,
                TokenBudget = (ulong)s.KvTokenBudget,
                HeldTokens = (ulong)s.KvTokensHeld,
            },
        };
        info.EosTokenIds.AddRange(model.EosTokenIds);
        return Task.FromResult(info);
    }

    private InferenceEngine RequireEngine() =>
        host.Engine ?? throw new RpcException(new Status(StatusCode.Unavailable, $"The model is not loaded: {host.NotLoadedReason}."));

    /// <summary>Proto3 defaults mean "unset": the engine's defaults apply (see inference.proto).</summary>
    internal static GenerationRequest ToEngineRequest(GenerateRequest r)
    {
        var s = r.Sampling ?? new SamplingParams();
        return new GenerationRequest
        {
            PromptTokenIds = [.. r.PromptTokenIds],
            Sampling = new SamplingParameters
            {
                Temperature = s.HasTemperature ? s.Temperature : 1f,
                TopP = s.HasTopP ? s.TopP : 1f,
                TopK = (int)Math.Min(s.TopK, int.MaxValue),
                MinP = s.MinP,
                RepetitionPenalty = s.HasRepetitionPenalty ? s.RepetitionPenalty : 1f,
                PresencePenalty = s.PresencePenalty,
                FrequencyPenalty = s.FrequencyPenalty,
                Seed = s.HasSeed ? s.Seed : null,
            },
            MaxNewTokens = r.HasMaxNewTokens ? (int)Math.Min(r.MaxNewTokens, int.MaxValue) : null,
            StopTokenIds = [.. r.StopTokenIds],
            IgnoreEos = r.IgnoreEos,
            N = r.N == 0 ? 1 : (int)Math.Min(r.N, int.MaxValue),
            Logprobs = r.Logprobs,
            TopLogprobs = (int)Math.Min(r.TopLogprobs, int.MaxValue),
            BeamSearch = r.BeamSearch is { } b
                ? new BeamSearchParameters((int)Math.Min(b.NumBeams, int.MaxValue), b.HasLengthPenalty ? b.LengthPenalty : 1f, b.EarlyStopping)
                : null,
            RequestId = r.RequestId.Length > 0 ? r.RequestId : null,
            Constraint = ToEngineConstraint(r.Constraint),
        };
    }

    private static ConstraintSpec? ToEngineConstraint(Constraint? c) => c?.KindCase switch
    {
        null or Constraint.KindOneofCase.None => null,
        Constraint.KindOneofCase.JsonSchema => new JsonSchemaConstraint(c.JsonSchema),
        Constraint.KindOneofCase.JsonObject => new Engine.Constraints.JsonObjectConstraint(),
        Constraint.KindOneofCase.Regex => new RegexConstraint(c.Regex),
        Constraint.KindOneofCase.Grammar => new GrammarConstraint(c.Grammar.Gbnf, c.Grammar.JsonSchemaRules),
        _ => throw new InvalidRequestException("constraint", $"kind {c.KindCase} is not supported."),
    };

    private static TokenStep ToStep(TokensGenerated step, bool withLogprobs)
    {
        var message = new TokenStep();
        foreach (var t in step.Tokens)
        {
            var token = new Protos.Chat.V1.GeneratedToken { SequenceIndex = (uint)t.SequenceIndex, TokenId = t.TokenId, Logprob = withLogprobs ? t.Logprob : 0f };
            if (t.TopLogprobs is { } top)
                foreach (var alt in top) token.TopLogprobs.Add(new Protos.Chat.V1.TokenLogprob { TokenId = alt.TokenId, Logprob = alt.Logprob });
            message.Tokens.Add(token);
        }
        return message;
    }

    private static GenerateResult ToResult(GenerationCompleted done)
    {
        var result = new GenerateResult
        {
            Usage = new Usage
            {
                PromptTokens = (uint)done.Usage.PromptTokens,
                CompletionTokens = (uint)done.Usage.CompletionTokens,
                CachedPromptTokens = (uint)done.Usage.CachedPromptTokens,
                TimeToFirstTokenSeconds = done.Usage.TimeToFirstTokenSeconds,
            },
        };
        foreach (var s in done.Sequences)
        {
            var sequence = new SequenceResult
            {
                Index = (uint)s.Index,
                FinishReason = s.FinishReason == Engine.FinishReason.Stop ? Protos.Chat.V1.FinishReason.Stop : Protos.Chat.V1.FinishReason.Length,
                Score = s.Score,
            };
            sequence.TokenIds.AddRange(s.TokenIds);
            result.Sequences.Add(sequence);
        }
        return result;
    }
}
