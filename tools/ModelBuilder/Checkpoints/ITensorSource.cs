namespace ChatServices.ModelBuilder.Checkpoints;

/// <summary>
/// Named weight tensors under their Hugging Face names (<c>model.layers.0.self_attn.q_proj.weight</c>, …), read one
/// at a time so a conversion never holds more than the tensor it is writing.
/// </summary>
public interface ITensorSource : IDisposable
{
    bool Contains(string name);

    /// <summary>The tensor's shape, or a <see cref="ModelBuilderException"/> naming the missing tensor.</summary>
    long[] Shape(string name);

    /// <summary>The tensor's elements, row-major, widened to float32 from whatever the checkpoint stores.</summary>
    float[] ReadFloat32(string name);
}
