using System.Diagnostics;
using System.Text.Json;
using Grpc.Core;
using ChatServices.Protos.Chat.V1;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace ChatServices.InferenceService.Tests.Api;

/// <summary>
/// A client nobody here wrote — Debian's python3-grpcio (gRPC C-core) — streams tokens from the service, gets
/// INVALID_ARGUMENT naming the field, and reads the model info, through protos/chat/v1/inference.proto only.
/// </summary>
public sealed class PythonClientInteropTests(InferenceServiceFixture fixture) : IClassFixture<InferenceServiceFixture>
{
    [Fact]
    public async Task Python_grpcio_client_streams_tokens_and_sees_status_codes()
    {
        var prompt = TestModel.Prompt(11, 500);
        var request = new GenerateRequest { Sampling = new SamplingParams { Temperature = 0 }, MaxNewTokens = 10, IgnoreEos = true };
        request.PromptTokenIds.AddRange(prompt);
        using var call = fixture.Client.Generate(request);
        var expected = new List<int>();
        await foreach (var m in call.ResponseStream.ReadAllAsync())
            if (m.KindCase == GenerateResponse.KindOneofCase.Result) expected.AddRange(m.Result.Sequences[0].TokenIds);

        var descriptors = Path.Combine(Path.GetTempPath(), $"chatservices-inference-{Guid.NewGuid():N}.pb");
        var set = new FileDescriptorSet();
        set.File.Add(FileDescriptorProto.Parser.ParseFrom(InferenceReflection.Descriptor.SerializedData));
        await File.WriteAllBytesAsync(descriptors, set.ToByteArray());
        try
        {
            var target = fixture.Address.Authority;
            var info = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
            foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "Peers", "python_inference_client.py"), target, descriptors, string.Join(',', prompt), InferenceServiceFixture.ServiceKey })
                info.ArgumentList.Add(a);
            using var process = Process.Start(info)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            Assert.True(process.WaitForExit(60_000), "python client finished");
            Assert.True(process.ExitCode == 0, await stderr);
            var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();

            var generate = lines.Single(l => l.GetProperty("scenario").GetString() == "generate");
            var steps = generate.GetProperty("steps").EnumerateArray().Select(s => s.EnumerateArray().Single().GetInt32()).ToList();
            Assert.Equal(expected, steps);
            Assert.Equal(expected, generate.GetProperty("result").GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()));
            Assert.Equal(10, generate.GetProperty("result").GetProperty("completion_tokens").GetInt32());

            var invalid = lines.Single(l => l.GetProperty("scenario").GetString() == "invalid").GetProperty("error");
            Assert.Equal("INVALID_ARGUMENT", invalid.GetProperty("code").GetString());
            Assert.StartsWith("sampling.top_p:", invalid.GetProperty("details").GetString());

            // The status the authorization layer answers is a real gRPC status to C-core, with its reason.
            var anonymous = lines.Single(l => l.GetProperty("scenario").GetString() == "no-credential").GetProperty("error");
            Assert.Equal("UNAUTHENTICATED", anonymous.GetProperty("code").GetString());
            Assert.Contains("authorization: Bearer", anonymous.GetProperty("details").GetString());

            var model = lines.Single(l => l.GetProperty("scenario").GetString() == "info");
            Assert.Equal(512, model.GetProperty("vocab_size").GetInt32());
            Assert.Equal("CPUExecutionProvider", model.GetProperty("provider").GetString());
        }
        finally
        {
            File.Delete(descriptors);
        }
    }
}
