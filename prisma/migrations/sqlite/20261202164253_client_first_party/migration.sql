-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Client" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "metadata" TEXT NOT NULL,
    "secretHash" TEXT,
    "previousSecretHash" TEXT,
    "previousSecretExpiresAt" DATETIME,
    "disabled" BOOLEAN NOT NULL DEFAULT false,
    "admin" BOOLEAN NOT NULL DEFAULT false,
    "firstParty" BOOLEAN NOT NULL DEFAULT false,
    "dynamic" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_Client" ("admin", "createdAt", "disabled", "id", "metadata", "name", "previousSecretExpiresAt", "previousSecretHash", "secretHash", "updatedAt") SELECT "admin", "createdAt", "disabled", "id", "metadata", "name", "previousSecretExpiresAt", "previousSecretHash", "secretHash", "updatedAt" FROM "Client";
DROP TABLE "Client";
ALTER TABLE "new_Client" RENAME TO "Client";
CREATE INDEX "Client_name_idx" ON "Client"("name");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

-- Clients registered through dynamic registration are the ones holding a registration access token.
UPDATE "Client" SET "dynamic" = true WHERE "id" IN (SELECT "clientId" FROM "OidcPayload" WHERE "model" = 'RegistrationAccessToken' AND "clientId" IS NOT NULL);
