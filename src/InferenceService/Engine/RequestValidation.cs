namespace ChatServices.InferenceService.Engine;

/// <summary>
/// Checks a request against the model and engine limits before it is queued. Every failure names the field, in the
/// spelling of protos/chat/v1/inference.proto, so a client can tell what to fix.
/// </summary>
public static class RequestValidation
{
    public const int MaxTopLogprobs = 20;

    public static void Validate(GenerationRequest r, int vocabSize, int contextLength, int maxWidth)
    {
        if (r.PromptTokenIds.Length == 0)
            throw new InvalidRequestException("prompt_token_ids", "must hold at least one token id.");
        if (r.PromptTokenIds.Length >= contextLength)
            throw new InvalidRequestException("prompt_token_ids",
                $"prompt of {r.PromptTokenIds.Length} tokens leaves no room to generate within the context length of {contextLength} tokens.");
        for (var i = 0; i < r.PromptTokenIds.Length; i++)
            if ((uint)r.PromptTokenIds[i] >= (uint)vocabSize)
                throw new InvalidRequestException("prompt_token_ids",
                    $"token id {r.PromptTokenIds[i]} at position {i} is outside the vocabulary [0, {vocabSize}).");
        foreach (var t in r.StopTokenIds)
            if ((uint)t >= (uint)vocabSize)
                throw new InvalidRequestException("stop_token_ids", $"token id {t} is outside the vocabulary [0, {vocabSize}).");
        if (r.MaxNewTokens is <= 0)
            throw new InvalidRequestException("max_new_tokens", "must be at least 1 (leave it unset for the context limit).");

        var s = r.Sampling;
        if (!(s.Temperature >= 0f && s.Temperature <= 100f))
            throw new InvalidRequestException("sampling.temperature", $"must be in [0, 100], got {s.Temperature}.");
        if (!(s.TopP > 0f && s.TopP <= 1f))
            throw new InvalidRequestException("sampling.top_p", $"must be in (0, 1], got {s.TopP}.");
        if (s.TopK < 0)
            throw new InvalidRequestException("sampling.top_k", $"must be 0 (off) or positive, got {s.TopK}.");
        if (!(s.MinP >= 0f && s.MinP <= 1f))
            throw new InvalidRequestException("sampling.min_p", $"must be in [0, 1], got {s.MinP}.");
        if (!(s.RepetitionPenalty > 0f && s.RepetitionPenalty <= 10f))
            throw new InvalidRequestException("sampling.repetition_penalty", $"must be in (0, 10], got {s.RepetitionPenalty}.");
        if (!(s.PresencePenalty >= -2f && s.PresencePenalty <= 2f))
            throw new InvalidRequestException("sampling.presence_penalty", $"must be in [-2, 2], got {s.PresencePenalty}.");
        if (!(s.FrequencyPenalty >= -2f && s.FrequencyPenalty <= 2f))
            throw new InvalidRequestException("sampling.frequency_penalty", $"must be in [-2, 2], got {s.FrequencyPenalty}.");

        if (r.N < 1 || r.N > maxWidth)
            throw new InvalidRequestException("n", $"must be in [1, {maxWidth}], got {r.N}.");
        if (r.TopLogprobs < 0 || r.TopLogprobs > MaxTopLogprobs)
            throw new InvalidRequestException("top_logprobs", $"must be in [0, {MaxTopLogprobs}], got {r.TopLogprobs}.");
        if (r.BeamSearch is { } b)
        {
            if (b.NumBeams < 1 || b.NumBeams > maxWidth)
                throw new InvalidRequestException("beam_search.num_beams", $"must be in [1, {maxWidth}], got {b.NumBeams}.");
            if (!float.IsFinite(b.LengthPenalty))
                throw new InvalidRequestException("beam_search.length_penalty", "must be a finite number.");
            if (r.N != 1)
                throw new InvalidRequestException("n", "must be 1 with beam search (the beams are the alternatives).");
        }
        if (r.Constraint is not null && r.IgnoreEos && r.StopTokenIds.Length == 0)
            throw new InvalidRequestException("constraint", "needs a token to end a complete output: with ignore_eos set, give stop_token_ids.");
    }
}
