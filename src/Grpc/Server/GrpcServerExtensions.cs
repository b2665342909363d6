using System.Reflection;
using ChatServices.Grpc.HealthChecks;
using ChatServices.Grpc.Protocol;
using ChatServices.Grpc.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace ChatServices.Grpc.Server;

/// <summary>
/// Hosting the gRPC layer: <c>builder.AddGrpcServer()</c> registers it, <c>app.MapGrpcService&lt;T&gt;()</c>
/// maps one service (one POST endpoint per method, at <c>/package.Service/Method</c>), and
/// <c>app.MapGrpcHealthAndReflection()</c> adds the standard health and reflection services.
/// </summary>
public static class GrpcServerExtensions
{
    /// <summary>Registers the gRPC server: options (configuration section <c>Grpc</c>), the service registry, the
    /// health status registry (following <see cref="ServiceDefaults.Readiness"/> when registered), and
    /// the health and reflection services.</summary>
    public static TBuilder AddGrpcServer<TBuilder>(this TBuilder builder, Action<GrpcServerOptions>? configure = null)
        where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddGrpcServer(configure);
        builder.Services.Configure<GrpcServerOptions>(builder.Configuration.GetSection("Grpc"));
        return builder;
    }

    public static IServiceCollection AddGrpcServer(this IServiceCollection services, Action<GrpcServerOptions>? configure = null)
    {
        services.AddOptions<GrpcServerOptions>();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.AddRouting();
        services.AddSingleton<GrpcServiceRegistry>();
        services.AddSingleton<HealthStatusRegistry>();
        services.AddSingleton<HealthService>();
        services.AddSingleton<ReflectionService>();
        services.AddSingleton<ReflectionServiceV1>();
        return services;
    }

    /// <summary>Maps every method of <typeparamref name="TService"/>, a class derived from a generated
    /// <c>XxxBase</c>. Also maps, once, the catch-all that answers UNIMPLEMENTED for unknown methods.</summary>
    public static IEndpointConventionBuilder MapGrpcService<TService>(this IEndpointRouteBuilder endpoints)
        where TService : class
    {
        var services = endpoints.ServiceProvider;
        var registry = services.GetService<GrpcServiceRegistry>()
            ?? throw new InvalidOperationException("Call builder.AddGrpcServer() (or services.AddGrpcServer()) before mapping gRPC services.");
        var options = services.GetRequiredService<IOptions<GrpcServerOptions>>().Value;
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("ChatServices.Grpc.Server");

        var binder = new ServiceBinder(new ServiceActivator(typeof(TService), services), options, logger);
        FindBindMethod(typeof(TService)).Invoke(null, [binder]);
        var serviceName = binder.ServiceName ?? typeof(TService).Name;
        registry.Add(serviceName, binder.Descriptor);
        services.GetRequiredService<HealthStatusRegistry>().AddService(serviceName);

        var conventions = new List<IEndpointConventionBuilder>();
        foreach (var (path, handler) in binder.Methods)
        {
            conventions.Add(endpoints.MapPost(path, handler.HandleCallAsync).WithDisplayName("gRPC " + path));
        }

        if (!registry.UnimplementedMapped)
        {
            registry.UnimplementedMapped = true;
            MapUnimplemented(endpoints);
        }

        return new CompositeConventionBuilder(conventions);
    }

    /// <summary>Maps <c>grpc.health.v1.Health</c> and server reflection (v1alpha and v1).</summary>
    public static IEndpointRouteBuilder MapGrpcHealthAndReflection(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGrpcService<HealthService>();
        endpoints.MapGrpcService<ReflectionService>();
        endpoints.MapGrpcService<ReflectionServiceV1>();
        return endpoints;
    }

    /// <summary>The generated base class's <c>public static void BindService(ServiceBinder)</c>: found once, at
    /// mapping time, by walking up from the implementation.</summary>
    private static MethodInfo FindBindMethod(Type serviceType)
    {
        for (var type = serviceType; type is not null; type = type.BaseType)
        {
            var method = type.GetMethod("BindService", BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly, [typeof(ServiceBinder)]);
            if (method is not null)
            {
                return method;
            }
        }

        throw new InvalidOperationException(
            $"{serviceType} does not derive from a generated gRPC service base (a class with a static BindService(ServiceBinder)).");
    }

    /// <summary>Unknown service or method: a gRPC request to any other <c>/{service}/{method}</c> path gets
    /// UNIMPLEMENTED (Trailers-Only); anything else is left as a plain 404.</summary>
    private static void MapUnimplemented(IEndpointRouteBuilder endpoints)
    {
        endpoints.Map("{unimplementedService}/{unimplementedMethod}", static context =>
        {
            if (!GrpcProtocol.IsGrpcContentType(context.Request.ContentType))
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }

            var path = context.Request.Path.Value ?? "";
            var known = context.RequestServices.GetRequiredService<GrpcServiceRegistry>().ServiceNames;
            var service = path.TrimStart('/').Split('/')[0];
            var detail = known.Contains(service) ? $"Method is unimplemented: {path}" : $"Service is unimplemented: {service}";
            context.Response.ContentType = GrpcProtocol.ContentType;
            context.Response.Headers[GrpcProtocol.StatusTrailer] = ((int)StatusCode.Unimplemented).ToString(System.Globalization.CultureInfo.InvariantCulture);
            context.Response.Headers[GrpcProtocol.MessageTrailer] = PercentEncoding.Encode(detail);
            return Task.CompletedTask;
        }).WithDisplayName("gRPC unimplemented").WithOrder(int.MaxValue);
    }

    private sealed class CompositeConventionBuilder(IReadOnlyList<IEndpointConventionBuilder> builders) : IEndpointConventionBuilder
    {
        public void Add(Action<EndpointBuilder> convention)
        {
            foreach (var builder in builders)
            {
                builder.Add(convention);
            }
        }

        public void Finally(Action<EndpointBuilder> finallyConvention)
        {
            foreach (var builder in builders)
            {
                builder.Finally(finallyConvention);
            }
        }
    }
}
