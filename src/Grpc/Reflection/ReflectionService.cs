using ChatServices.Grpc.Server;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Reflection.V1Alpha;

namespace ChatServices.Grpc.Reflection;

/// <summary>
/// Server reflection, <c>grpc.reflection.v1alpha.ServerReflection</c>: lists the mapped services and answers
/// with serialized <c>FileDescriptorProto</c>s (the file and its transitive imports) for a file name or a
/// symbol (service, method, message, enum). Extensions are not used by this project: those requests answer
/// NOT_FOUND.
/// </summary>
public sealed class ReflectionService(GrpcServiceRegistry registry) : ServerReflection.ServerReflectionBase
{
    public override async Task ServerReflectionInfo(IAsyncStreamReader<ServerReflectionRequest> requestStream,
        IServerStreamWriter<ServerReflectionResponse> responseStream, ServerCallContext context)
    {
        while (await requestStream.MoveNext(context.CancellationToken).ConfigureAwait(false))
        {
            await responseStream.WriteAsync(Answer(requestStream.Current)).ConfigureAwait(false);
        }
    }

    internal ServerReflectionResponse Answer(ServerReflectionRequest request)
    {
        var response = new ServerReflectionResponse { ValidHost = request.Host, OriginalRequest = request };
        switch (request.MessageRequestCase)
        {
            case ServerReflectionRequest.MessageRequestOneofCase.ListServices:
                var list = new ListServiceResponse();
                foreach (var name in registry.ServiceNames)
                {
                    list.Service.Add(new ServiceResponse { Name = name });
                }

                response.ListServicesResponse = list;
                break;
            case ServerReflectionRequest.MessageRequestOneofCase.FileByFilename:
                SetFile(response, AllFiles().FirstOrDefault(f => f.Name == request.FileByFilename), request.FileByFilename);
                break;
            case ServerReflectionRequest.MessageRequestOneofCase.FileContainingSymbol:
                SetFile(response, FindFileContainingSymbol(request.FileContainingSymbol), request.FileContainingSymbol);
                break;
            default:
                response.ErrorResponse = new ErrorResponse { ErrorCode = (int)StatusCode.NotFound, ErrorMessage = "Extensions are not supported." };
                break;
        }

        return response;
    }

    private static void SetFile(ServerReflectionResponse response, FileDescriptor? file, string what)
    {
        if (file is null)
        {
            response.ErrorResponse = new ErrorResponse { ErrorCode = (int)StatusCode.NotFound, ErrorMessage = $"'{what}' not found." };
            return;
        }

        // The file first, then its transitive dependencies, each once: a client can then build the whole set.
        var result = new FileDescriptorResponse();
        var seen = new HashSet<string>();
        var pending = new Stack<FileDescriptor>();
        pending.Push(file);
        while (pending.Count > 0)
        {
            var next = pending.Pop();
            if (!seen.Add(next.Name))
            {
                continue;
            }

            result.FileDescriptorProto.Add(next.SerializedData);
            foreach (var dependency in next.Dependencies)
            {
                pending.Push(dependency);
            }
        }

        response.FileDescriptorResponse = result;
    }

    private IEnumerable<FileDescriptor> AllFiles()
    {
        var seen = new HashSet<string>();
        var pending = new Stack<FileDescriptor>(registry.Descriptors.Select(d => d.File));
        while (pending.Count > 0)
        {
            var file = pending.Pop();
            if (!seen.Add(file.Name))
            {
                continue;
            }

            yield return file;
            foreach (var dependency in file.Dependencies)
            {
                pending.Push(dependency);
            }
        }
    }

    private FileDescriptor? FindFileContainingSymbol(string symbol) => AllFiles().FirstOrDefault(f => Declares(f, symbol));

    /// <summary>True when <paramref name="file"/> declares the fully qualified <paramref name="symbol"/>: a
    /// service, a service's method, a message (nested too), an enum, or a field of a message.</summary>
    private static bool Declares(FileDescriptor file, string symbol)
    {
        var prefix = file.Package.Length > 0 ? file.Package + "." : "";
        if (!symbol.StartsWith(prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var parts = symbol[prefix.Length..].Split('.');
        if (file.Services.FirstOrDefault(s => s.Name == parts[0]) is { } service)
        {
            return parts.Length == 1 || (parts.Length == 2 && service.FindMethodByName(parts[1]) is not null);
        }

        if (parts.Length == 1 && file.EnumTypes.Any(e => e.Name == parts[0]))
        {
            return true;
        }

        IList<MessageDescriptor> messages = file.MessageTypes;
        MessageDescriptor? message = null;
        foreach (var part in parts)
        {
            var next = messages.FirstOrDefault(m => m.Name == part);
            if (next is null)
            {
                // The last part may name an enum or a field of the message found so far.
                return message is not null && part == parts[^1]
                    && (message.EnumTypes.Any(e => e.Name == part) || message.FindFieldByName(part) is not null);
            }

            message = next;
            messages = next.NestedTypes;
        }

        return message is not null;
    }
}

/// <summary>
/// <c>grpc.reflection.v1.ServerReflection</c>, the same protocol under its stable package name. Its messages are
/// field-for-field those of v1alpha, so each request is re-read as v1alpha and each answer re-read as v1.
/// </summary>
public sealed class ReflectionServiceV1(ReflectionService v1alpha) : global::Grpc.Reflection.V1.ServerReflection.ServerReflectionBase
{
    public override async Task ServerReflectionInfo(IAsyncStreamReader<global::Grpc.Reflection.V1.ServerReflectionRequest> requestStream,
        IServerStreamWriter<global::Grpc.Reflection.V1.ServerReflectionResponse> responseStream, ServerCallContext context)
    {
        while (await requestStream.MoveNext(context.CancellationToken).ConfigureAwait(false))
        {
            var request = ServerReflectionRequest.Parser.ParseFrom(requestStream.Current.ToByteString());
            var answer = v1alpha.Answer(request);
            await responseStream.WriteAsync(global::Grpc.Reflection.V1.ServerReflectionResponse.Parser.ParseFrom(answer.ToByteString())).ConfigureAwait(false);
        }
    }
}
