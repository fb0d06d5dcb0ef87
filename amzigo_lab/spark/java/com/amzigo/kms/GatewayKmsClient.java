package com.amzigo.kms;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Base64;
import java.util.Collection;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManagerFactory;
import org.apache.hadoop.conf.Configuration;
import org.apache.parquet.crypto.KeyAccessDeniedException;
import org.apache.parquet.crypto.ParquetCryptoRuntimeException;
import org.apache.parquet.crypto.keytools.KmsClient;

/**
 * A parquet-mr KmsClient that asks the amzigo gateway to unwrap key-encryption keys.
 *
 * <p>It holds no key: for each file footer parquet-mr gives it a wrapped KEK and the partition
 * key id, and it POSTs them with the job's token to the gateway's unwrap endpoint (HTTPS,
 * trusting only the CA whose PEM path is {@code amzigo.kms.ca.path}). The gateway checks the
 * token's scope, audits the call and answers the KEK. Wrapping is refused: the lake is written
 * by its own commit protocol only. See docs/operations.md and notes/scale-protocol.md.
 */
public final class GatewayKmsClient implements KmsClient {
  /** Hadoop conf key (set as a per-read option) naming the CA PEM file to trust. */
  public static final String CA_PATH = "amzigo.kms.ca.path";

  private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(20);
  private static final Duration CALL_TIMEOUT = Duration.ofSeconds(60);

  private URI url;
  private String token;
  private HttpClient http;

  @Override
  public void initialize(
      Configuration conf, String kmsInstanceID, String kmsInstanceURL, String accessToken)
      throws KeyAccessDeniedException {
    if (accessToken == null
        || accessToken.isEmpty()
        || KmsClient.KEY_ACCESS_TOKEN_DEFAULT.equals(accessToken)) {
      throw new KeyAccessDeniedException(
          "amzigo: no job token (parquet.encryption.key.access.token); plan the read with the"
              + " gateway first");
    }
    if (kmsInstanceURL == null || !kmsInstanceURL.startsWith("https://")) {
      throw new ParquetCryptoRuntimeException(
          "amzigo: parquet.encryption.kms.instance.url must be the gateway's https unwrap URL");
    }
    String caPath = conf.getTrimmed(CA_PATH);
    if (caPath == null || caPath.isEmpty()) {
      throw new ParquetCryptoRuntimeException(
          "amzigo: " + CA_PATH + " (the gateway CA's PEM file) is not set");
    }
    this.url = URI.create(kmsInstanceURL);
    this.token = accessToken;
    SSLParameters params = new SSLParameters();
    params.setProtocols(new String[] {"TLSv1.3", "TLSv1.2"});
    this.http =
        HttpClient.newBuilder()
            .sslContext(trusting(caPath))
            .sslParameters(params)
            .connectTimeout(CONNECT_TIMEOUT)
            .followRedirects(HttpClient.Redirect.NEVER)
            .build();
  }

  private static SSLContext trusting(String caPath) {
    try (InputStream in = Files.newInputStream(Paths.get(caPath))) {
      Collection<? extends Certificate> certs =
          CertificateFactory.getInstance("X.509").generateCertificates(in);
      if (certs.isEmpty()) {
        throw new ParquetCryptoRuntimeException("amzigo: no certificate in " + caPath);
      }
      KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
      store.load(null, null);
      int n = 0;
      for (Certificate cert : certs) {
        store.setCertificateEntry("amzigo-ca-" + n++, cert);
      }
      TrustManagerFactory tmf =
          TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(store);
      SSLContext context = SSLContext.getInstance("TLS");
      context.init(null, tmf.getTrustManagers(), null);
      return context;
    } catch (IOException | GeneralSecurityException e) {
      throw new ParquetCryptoRuntimeException(
          "amzigo: cannot load the gateway CA from " + caPath + ": " + e.getMessage(), e);
    }
  }

  @Override
  public String wrapKey(byte[] keyBytes, String masterKeyIdentifier)
      throws KeyAccessDeniedException {
    throw new KeyAccessDeniedException(
        "amzigo: reads only; the lake is written by its own commit protocol, never by Spark");
  }

  @Override
  public byte[] unwrapKey(String wrappedKey, String masterKeyIdentifier)
      throws KeyAccessDeniedException {
    String body =
        "{\"key_id\":" + Json.quote(masterKeyIdentifier)
            + ",\"wrapped_kek\":" + Json.quote(wrappedKey) + "}";
    HttpRequest request =
        HttpRequest.newBuilder(url)
            .timeout(CALL_TIMEOUT)
            .header("Authorization", "Bearer " + token)
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8))
            .build();
    HttpResponse<String> response;
    try {
      response = http.send(request, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new ParquetCryptoRuntimeException(
          "amzigo: the gateway's unwrap endpoint " + url + " did not answer: " + e.getMessage(),
          e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new ParquetCryptoRuntimeException("amzigo: interrupted while unwrapping a key", e);
    }
    int status = response.statusCode();
    if (status == 200) {
      String kek = Json.stringField(response.body(), "kek");
      if (kek == null) {
        throw new ParquetCryptoRuntimeException("amzigo: the unwrap answer holds no key");
      }
      try {
        return Base64.getDecoder().decode(kek);
      } catch (IllegalArgumentException e) {
        throw new ParquetCryptoRuntimeException("amzigo: the unwrap answer is not base64");
      }
    }
    String why = Json.stringField(response.body(), "error");
    String detail =
        "amzigo: key access denied for key id " + masterKeyIdentifier + " (HTTP " + status
            + (why == null ? "" : ": " + why) + ")";
    if (status == 401 || status == 403) {
      throw new KeyAccessDeniedException(detail);
    }
    throw new ParquetCryptoRuntimeException(
        "amzigo: unwrap failed for key id " + masterKeyIdentifier + " (HTTP " + status
            + (why == null ? "" : ": " + why) + ")");
  }
}
