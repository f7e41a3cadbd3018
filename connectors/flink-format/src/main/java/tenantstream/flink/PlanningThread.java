package tenantstream.flink;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;

/**
 * Table API calls that plan SQL, made on the calling JVM thread with the planner's metadata provider set for it.
 *
 * <p>Flink's planner keeps Calcite's metadata provider in a thread-local (RelMetadataQueryBase.THREAD_PROVIDERS)
 * and sets it only on the thread that created the TableEnvironment (FLINK-23020, unfixed). PyFlink's calls reach
 * the JVM on whichever py4j connection thread is free, and planning on another thread failed with
 * "NullPointerException: metadataHandlerProvider". Each method here is a single py4j call: it sets the provider
 * for its own thread, then plans. Reflection only: the planner lives in a class loader of its own, and this jar
 * is built against the table API's common module alone.
 */
public final class PlanningThread {

    private PlanningThread() {
    }

    /** TableEnvironment.executeSql(statement): its TableResult. */
    public static Object executeSql(Object tableEnvironment, String statement) throws Exception {
        setMetadataProvider(tableEnvironment);
        return call(tableEnvironment, "executeSql", new Class<?>[] {String.class}, statement);
    }

    /** TableEnvironment.createTemporaryView(name, sqlQuery(query)): a view that is one plan node for all its readers. */
    public static void createTemporaryView(Object tableEnvironment, String name, String query) throws Exception {
        setMetadataProvider(tableEnvironment);
        Object table = call(tableEnvironment, "sqlQuery", new Class<?>[] {String.class}, query);
        Class<?> tableType = Class.forName("org.apache.flink.table.api.Table", true,
                tableEnvironment.getClass().getClassLoader());
        call(tableEnvironment, "createTemporaryView", new Class<?>[] {String.class, tableType}, name, table);
    }

    @SuppressWarnings("unchecked")
    private static void setMetadataProvider(Object tableEnvironment) throws Exception {
        Object planner = call(tableEnvironment, "getPlanner", new Class<?>[0]);
        ClassLoader loader = planner.getClass().getClassLoader();
        ThreadLocal<Object> providers = (ThreadLocal<Object>) Class.forName(
                "org.apache.calcite.rel.metadata.RelMetadataQueryBase", true, loader)
                .getField("THREAD_PROVIDERS").get(null);
        if (providers.get() != null) {
            return;
        }
        Object flinkProviders = Class.forName(
                "org.apache.flink.table.planner.plan.metadata.FlinkDefaultRelMetadataProvider", true, loader)
                .getMethod("INSTANCE").invoke(null);
        Class<?> providerType = Class.forName("org.apache.calcite.rel.metadata.RelMetadataProvider", true, loader);
        providers.set(Class.forName("org.apache.calcite.rel.metadata.JaninoRelMetadataProvider", true, loader)
                .getMethod("of", providerType).invoke(null, flinkProviders));
    }

    /** A public method of `target`, with the exception it threw (not wrapped in InvocationTargetException). */
    private static Object call(Object target, String name, Class<?>[] types, Object... args) throws Exception {
        Method method = target.getClass().getMethod(name, types);
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            Throwable cause = e.getCause();
            if (cause instanceof Exception) {
                throw (Exception) cause;
            }
            throw e;
        }
    }
}
