using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace ChatServices.Grpc.Server;

/// <summary>
/// Gives each call its service instance: the one registered in dependency injection when there is one
/// (a singleton stays one), otherwise a new instance per call with its constructor dependencies resolved,
/// disposed when the call ends.
/// </summary>
internal sealed class ServiceActivator
{
    private readonly Type _serviceType;
    private readonly bool _registered;
    private readonly ObjectFactory? _factory;

    public ServiceActivator(Type serviceType, IServiceProvider services)
    {
        _serviceType = serviceType;
        _registered = services.GetService<IServiceProviderIsService>()?.IsService(serviceType) == true;
        if (!_registered)
        {
            _factory = ActivatorUtilities.CreateFactory(serviceType, Type.EmptyTypes);
        }
    }

    public object Create(HttpContext http) =>
        _registered ? http.RequestServices.GetRequiredService(_serviceType) : _factory!(http.RequestServices, null);

    public ValueTask ReleaseAsync(object service)
    {
        if (_registered)
        {
            return ValueTask.CompletedTask;
        }

        if (service is IAsyncDisposable asyncDisposable)
        {
            return asyncDisposable.DisposeAsync();
        }

        (service as IDisposable)?.Dispose();
        return ValueTask.CompletedTask;
    }
}
