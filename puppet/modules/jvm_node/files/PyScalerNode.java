// The application JVM of a PyScaler node role (puppet/modules/jvm_node).
//
// It does no work of its own: it is the JVM whose platform MBeans (memory,
// threads, OperatingSystem load) PyScaler's JMX counters read, standing in for
// the Tomcat or application server a real cluster runs. The JMX remote agent
// starts from the -Dcom.sun.management.jmxremote.* options before main() runs,
// so once the pid file exists JMX is listening: jvmctl waits for that file.
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;

public final class PyScalerNode {
    public static void main(String[] args) throws Exception {
        String pidProperty = System.getProperty("pyscaler.pidfile");
        if (pidProperty == null) {
            System.err.println("PyScalerNode: -Dpyscaler.pidfile=<path> is required");
            System.exit(2);
        }
        Path pidFile = Paths.get(pidProperty);
        Path tmp = pidFile.resolveSibling(pidFile.getFileName() + ".tmp");
        Files.writeString(tmp, ProcessHandle.current().pid() + "\n");
        Files.move(tmp, pidFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                Files.deleteIfExists(pidFile);
            } catch (IOException ignored) {
                // the next start overwrites a stale pid file anyway
            }
        }));
        System.out.println("PyScalerNode up: pid " + ProcessHandle.current().pid()
                + ", JMX remote port " + System.getProperty("com.sun.management.jmxremote.port"));
        Thread.currentThread().join(); // until stopped (SIGTERM runs the hook)
    }
}
