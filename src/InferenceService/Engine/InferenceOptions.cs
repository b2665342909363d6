namespace ChatServices.InferenceService.Engine;

/// <summary>The <c>Inference</c> configuration section (appsettings.json, or <c>Inference__Key</c> environment variables).</summary>
public sealed class InferenceOptions
{
    public const string Section = "Inference";

    /// <summary>Model folder (genai_config.json, model.onnx). Relative paths resolve against the working directory.</summary>
    public string ModelPath { get; set; } = "";

    /// <summary><c>cpu</c> (default) or <c>cuda</c>.</summary>
    public string ExecutionProvider { get; set; } = "cpu";

    /// <summary>
    /// Admit callers with role <c>user</c> as well. Off by default: the GPU tier serves <c>service</c> callers
    /// (DialogueService) and <c>admin</c>, so a tenant cannot go around DialogueService's limits.
    /// </summary>
    public bool AdmitUsers { get; set; }

    /// <summary>CUDA device ordinal when <see cref="ExecutionProvider"/> is <c>cuda</c>.</summary>
    public int CudaDeviceId { get; set; }

    /// <summary>
    /// Memory for the KV cache, MiB; 0 (the default) takes <see cref="KvCacheMemoryFraction"/> of the host memory
    /// available at start. Sequences are admitted while the tokens they hold fit in it; on Linux a sequence's KV
    /// takes memory as its tokens are stored, elsewhere the budget is allocated at start as whole-context slots.
    /// </summary>
    public double KvCacheBudgetMiB { get; set; }

    /// <summary>Share of the host memory available at start used for the KV cache when <see cref="KvCacheBudgetMiB"/> is 0.</summary>
    public double KvCacheMemoryFraction { get; set; } = 0.5;

    /// <summary>Tokens one slot holds (a sequence's prompt plus output); 0 means the model's context length.</summary>
    public int MaxSequenceTokens { get; set; }

    /// <summary>Most sequences decoding together in one step.</summary>
    public int MaxBatchSize { get; set; } = 64;

    /// <summary>Most requests waiting for admission; beyond it requests are refused at once (RESOURCE_EXHAUSTED).</summary>
    public int MaxQueue { get; set; } = 256;

    /// <summary>Most prompt tokens of one sequence computed in one step (chunked prefill).</summary>
    public int PrefillChunkTokens { get; set; } = 256;

    /// <summary>Most tokens fed in one step (decodes plus prefill chunks); at least MaxBatchSize.</summary>
    public int StepTokenBudget { get; set; } = 512;

    /// <summary>
    /// Compute the first prompt chunks of several new sequences in one ONNX Runtime run (GroupQueryAttention graphs on
    /// the CPU provider, right padded). Off runs each chunk on its own.
    /// </summary>
    public bool BatchedPrefill { get; set; } = true;

    /// <summary>
    /// Longest first chunk that joins a batched prefill run; longer chunks run alone. Short chunks are bound by
    /// reading the weights, which a shared run reads once; long ones keep the cores busy on their own, and padding
    /// them to a common length only adds work (bench/results/prefill.md).
    /// </summary>
    public int BatchedPrefillMaxChunkTokens { get; set; } = 64;

    /// <summary>Reuse KV of earlier prompts and finished turns for prompts that start with the same tokens.</summary>
    public bool PrefixCaching { get; set; } = true;

    /// <summary>ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose (one per physical core).</summary>
    public int IntraOpThreads { get; set; }

    /// <summary>Most sequences (n or beams) one request may ask for.</summary>
    public int MaxWidth { get; set; } = 16;
}
